rule pretrain_supervised:
    input:
        dataset_ready,
        schedule=lambda wc: schedule_inputs(wc, "supervised"),
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
    inputs = {"data": dataset_ready(wc), "schedule": schedule_inputs(wc, "denoise")}
    if arm(wc).pretrained_encoder:
        inputs["encoder"] = arm_encoder_input(wc)
    return inputs


def denoise_args(wc):
    """The setting named by the output file (ddep.sweep), the arm's images and encoder."""
    name, setting = parse_run_name(wc.run, ARMS)
    args = [f"--arm {name}", setting.cli_args()]
    unlabelled, image_crop = arm_images(dataset(wc), arm(wc), ARMS.values())
    if unlabelled:
        args.append(f"--unlabelled {unlabelled}")
    if image_crop:
        args.append(f"--image-crop {image_crop[0]} {image_crop[1]}")
    heldout = dataset(wc).get("heldout") or {}
    if name in heldout:  # a folder, or null: the dataset's development split
        folder = heldout[name] or f"{dataset(wc)['root']}/{dataset_of(config, wc.dataset).splits[DEVELOPMENT_SPLIT].img_path}"
        args.append(f"--heldout {folder}")
    if arm(wc).pretrained_encoder:
        args.append(f"--encoder-weights {arm_encoder(wc)}")
    if arm(wc).frozen_encoder != preset_arm(name).frozen_encoder:  # what the job assumes of the name
        args.append("--freeze-encoder" if arm(wc).frozen_encoder else "--no-freeze-encoder")
    return " ".join(args)


rule pretrain_denoise:
    input:
        unpack(denoise_inputs),
    output:
        weights="resources/weights/{dataset}/{model}/{run}.pth",
        metrics="resources/weights/{dataset}/{model}/{run}.json",
    wildcard_constraints:
        run=f"({'|'.join(re.escape(name) for name, a in ARMS.items() if a.denoised)})_s[^/]+",
    params:
        root=lookup(dpath="datasets/{dataset}/root", within=config),
        noise=denoise_args,
        crop=crop_args,
        dataset=lambda wc: dataset_args(wc, schedule=True),
        ddep=ddep("pretrain_denoise"),
        args=lambda wc: job_args("pretrain_denoise", "denoise", wc.dataset, run_arm(wc)),
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
