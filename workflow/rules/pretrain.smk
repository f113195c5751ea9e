rule pretrain_supervised:
    input:
        dataset_ready,
    output:
        weights="resources/weights/{dataset}/supervised.safetensors",
        metrics="resources/weights/{dataset}/supervised.json",
    params:
        root=lambda wc: dataset(wc)["root"],
        ddep=ddep("pretrain_supervised"),
        args=job_args("pretrain_supervised", "supervised"),
    threads: config.get("threads", 1)
    priority: 20  # the start of the longest chain: supervised -> DDeP -> fine-tunes
    resources:
        **resources("pretrain_supervised"),
    log:
        "logs/pretrain/{dataset}/supervised.log",
    shell:
        "OMP_NUM_THREADS={threads} {params.ddep} pretrain-supervised --data-root {params.root} "
        "--out {output.weights} --work-dir work/pretrain/{wildcards.dataset}/supervised "
        "{params.args} > {log} 2>&1"


def denoise_inputs(wc):
    inputs = {"data": dataset_ready(wc)}
    if wc.arm == "ddep":
        inputs["encoder"] = supervised_encoder_input(wc)
    return inputs


def denoise_args(wc):
    d, noise = dataset(wc), config["denoising"]
    args = [sigma_args(wc.sigma), f"--formulation {noise['formulation']}", f"--target {noise['target']}"]
    if noise.get("noise_conditioning"):
        args.append("--noise-conditioning")
    if unlabelled_source(d, wc.arm):
        args.append(f"--unlabelled {unlabelled_source(d, wc.arm)}")
    if wc.arm == "ddep":
        args.append(f"--encoder-weights {supervised_encoder(wc)}")
    return " ".join(args)


rule pretrain_denoise:
    input:
        unpack(denoise_inputs),
    output:
        "resources/weights/{dataset}/{arm}_s{sigma}.pth",
    wildcard_constraints:
        arm="dep|ddep",
    params:
        root=lambda wc: dataset(wc)["root"],
        noise=denoise_args,
        crop=crop_args,
        ddep=ddep("pretrain_denoise"),
        args=job_args("pretrain_denoise", "denoise"),
    threads: config.get("threads", 1)
    priority: 10
    resources:
        **resources("pretrain_denoise"),
    log:
        "logs/pretrain/{dataset}/{arm}_s{sigma}.log",
    shell:
        "OMP_NUM_THREADS={threads} {params.ddep} pretrain-denoise --arm {wildcards.arm} "
        "--dataset {wildcards.dataset} --data-root {params.root} {params.noise} {params.crop} "
        "--out {output} "
        "--work-dir work/pretrain/{wildcards.dataset}/{wildcards.arm}_s{wildcards.sigma} "
        "{params.args} > {log} 2>&1"
