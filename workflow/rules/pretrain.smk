rule pretrain_supervised:
    input:
        dataset_ready,
    output:
        weights="resources/weights/{dataset}/{model}/supervised.safetensors",
        metrics="resources/weights/{dataset}/{model}/supervised.json",
    params:
        root=lookup(dpath="datasets/{dataset}/root", within=config),
        ddep=ddep("pretrain_supervised"),
        args=job_args("pretrain_supervised", "supervised"),
        model=model_args,
    threads: config.get("threads", 1)
    priority: 20  # the start of the longest chain: supervised -> DDeP -> fine-tunes
    resources:
        **rule_resources(config, "pretrain_supervised"),
    log:
        "logs/pretrain/{dataset}/{model}/supervised.log",
    shell:
        "{params.ddep} pretrain-supervised --data-root {params.root} {params.model} "
        "--out {output.weights} --work-dir work/pretrain/{wildcards.dataset}/{wildcards.model}/supervised "
        "{params.args} > {log} 2>&1"


def denoise_inputs(wc):
    inputs = {"data": dataset_ready(wc)}
    if run_arm(wc) == "ddep":
        inputs["encoder"] = supervised_encoder_input(wc)
    return inputs


def denoise_args(wc):
    """The setting named by the output file (ddep.sweep), the arm's images and encoder."""
    arm, setting = parse_run_name(wc.run)
    args = [f"--arm {arm}", setting.cli_args()]
    unlabelled = unlabelled_source(dataset(wc), arm)
    if unlabelled:
        args.append(f"--unlabelled {unlabelled}")
    image_crop = unlabelled_crop(config, wc.dataset, arm)
    if image_crop:
        args.append(f"--image-crop {image_crop[0]} {image_crop[1]}")
    heldout = dataset(wc).get("heldout") or {}
    if arm in heldout:  # a folder, or null: the dataset's development split
        folder = heldout[arm] or f"{dataset(wc)['root']}/{dataset_of(config, wc.dataset).splits[DEVELOPMENT_SPLIT].img_path}"
        args.append(f"--heldout {folder}")
    if arm == "ddep":
        args.append(f"--encoder-weights {supervised_encoder(wc)}")
    return " ".join(args)


rule pretrain_denoise:
    input:
        unpack(denoise_inputs),
    output:
        weights="resources/weights/{dataset}/{model}/{run}.pth",
        metrics="resources/weights/{dataset}/{model}/{run}.json",
    wildcard_constraints:
        run=r"(dep|ddep)_s[^/]+",
    params:
        root=lookup(dpath="datasets/{dataset}/root", within=config),
        noise=denoise_args,
        crop=crop_args,
        dataset=lambda wc: dataset_args(wc, schedule=True),
        ddep=ddep("pretrain_denoise"),
        args=job_args("pretrain_denoise", "denoise"),
        model=model_args,
    threads: config.get("threads", 1)
    priority: 10
    resources:
        **rule_resources(config, "pretrain_denoise"),
    log:
        "logs/pretrain/{dataset}/{model}/{run}.log",
    shell:
        "{params.ddep} pretrain-denoise {params.noise} {params.model} "
        "--dataset {wildcards.dataset} {params.dataset} --data-root {params.root} {params.crop} --out {output.weights} "
        "--work-dir work/pretrain/{wildcards.dataset}/{wildcards.model}/{wildcards.run} "
        "{params.args} > {log} 2>&1"
