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
        dataset=lambda wc: dataset_args(wc, schedule=True),
        ddep=ddep("finetune"),
        args=job_args("finetune", "finetune"),
        model=model_args,
        setting=finetune_setting_args,
        work_dir="work/finetune/{dataset}/{model}/{fraction}/{run}/seed{seed}",
    threads: config.get("threads", 1)
    resources:
        **rule_resources(config, "finetune"),
    log:
        "logs/finetune/{dataset}/{model}/{fraction}/{run}/seed{seed}.log",
    shell:
        "{params.ddep} finetune --arm {params.arm} {params.model} "
        "--dataset {wildcards.dataset} {params.dataset} --data-root {params.root} --split {input.split} "
        "--label-fraction {params.fraction} --seed {wildcards.seed} {params.pretrained} {params.crop} "
        "--out {output} --work-dir {params.work_dir} {params.args} {params.setting} > {log} 2>&1"


# The tuning stage (ddep.tuning): the same fine-tune at each grid point, on a development seed,
# evaluated on the development split. A crashed point is recorded as failed, not raised.
use rule finetune as tune_finetune with:
    input:
        unpack(finetune_inputs),
        development=development_list,
    output:
        "resources/tuning/{dataset}/{model}/{fraction}/{run}/{point}/seed{seed}.json",
    params:  # the others are finetune's
        setting=lambda wc: f"--eval-split {DEVELOPMENT_SPLIT} --tuning-point {TUNING_POINTS[wc.point]}"
        + (f" --eval-list {development_list(wc)}" if development_list(wc) else ""),
        work_dir="work/tuning/{dataset}/{model}/{fraction}/{run}/{point}/seed{seed}",
    log:
        "logs/tuning/{dataset}/{model}/{fraction}/{run}/{point}/seed{seed}.log",
