def finetune_inputs(wc):
    inputs = {"data": dataset_ready(wc),
              "split": f"resources/splits/{wc.dataset}/{wc.fraction}_seed{wc.seed}.txt"}
    if arm(wc).denoised:
        inputs["pretrained"] = pretraining(wc)
    elif arm(wc).pretrained_encoder:
        inputs["encoder"] = arm_encoder_input(wc)
    return inputs


def pretrained_args(wc):
    if arm(wc).denoised:
        return f"--init-from {pretraining(wc)}"
    if arm(wc).pretrained_encoder:
        return f"--encoder-weights {arm_encoder(wc)}"
    return ""


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        "resources/runs/{dataset}/{model}/{fraction}/{run}/seed{seed}.json",
    wildcard_constraints:
        seed=r"\d+",
    params:
        root=lookup(dpath="datasets/{dataset}/root", within=config),
        arm=run_arm,
        fraction=label_fraction,
        pretrained=pretrained_args,
        crop=crop_args,
        ddep=ddep("finetune"),
        args=job_args("finetune", "finetune"),
        model=model_args,
    threads: config.get("threads", 1)
    resources:
        **rule_resources(config, "finetune"),
    log:
        "logs/finetune/{dataset}/{model}/{fraction}/{run}/seed{seed}.log",
    shell:
        "{params.ddep} finetune --arm {params.arm} {params.model} "
        "--dataset {wildcards.dataset} --data-root {params.root} --split {input.split} "
        "--label-fraction {params.fraction} --seed {wildcards.seed} {params.pretrained} {params.crop} "
        "--out {output} --work-dir work/finetune/{wildcards.dataset}/{wildcards.model}/{wildcards.fraction}/"
        "{wildcards.run}/seed{wildcards.seed} {params.args} > {log} 2>&1"
