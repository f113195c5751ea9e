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


def denoise_arm(wc):
    return parse_run_name(wc.name)[0]


def denoise_inputs(wc):
    inputs = {"data": dataset_ready(wc)}
    if denoise_arm(wc) == "ddep":
        inputs["encoder"] = supervised_encoder_input(wc)
    return inputs


def denoise_args(wc):
    """The setting named by the output file (ddep.sweep), the arm's images and encoder."""
    arm, setting = parse_run_name(wc.name)
    args = [f"--arm {arm}", setting.cli_args()]
    unlabelled = unlabelled_source(dataset(wc), arm)
    if unlabelled:
        args.append(f"--unlabelled {unlabelled}")
    if arm == "ddep":
        args.append(f"--encoder-weights {supervised_encoder(wc)}")
    return " ".join(args)


rule pretrain_denoise:
    input:
        unpack(denoise_inputs),
    output:
        "resources/weights/{dataset}/{name}.pth",
    wildcard_constraints:
        name=r"(dep|ddep)_s[^/]+",
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
        "logs/pretrain/{dataset}/{name}.log",
    shell:
        "OMP_NUM_THREADS={threads} {params.ddep} pretrain-denoise {params.noise} "
        "--dataset {wildcards.dataset} --data-root {params.root} {params.crop} --out {output} "
        "--work-dir work/pretrain/{wildcards.dataset}/{wildcards.name} {params.args} > {log} 2>&1"
