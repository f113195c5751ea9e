def finetune_inputs(wc, seeds=None):
    """A run's inputs; with ``seeds``, those of the cell's runs of these seeds (one split each)."""
    inputs = {"data": dataset_ready(wc), "schedule": schedule_inputs(wc, "finetune"),
              "split": [f"resources/splits/{wc.dataset}/{wc.fraction}_seed{seed}.txt" for seed in seeds or [wc.seed]]}
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
        split=lambda wc, input: input.split,
        seeds="{seed}",
        out=lambda wc, output: output[0],
        work_dir="work/finetune/{dataset}/{model}/{fraction}/{run}/seed{seed}",
    threads: config.get("threads", 1)
    resources:
        **rule_resources(config, "finetune"),
    log:
        "logs/finetune/{dataset}/{model}/{fraction}/{run}/seed{seed}.log",
    shell:
        "{params.ddep} finetune --arm {params.arm} {params.model} "
        "--dataset {wildcards.dataset} {params.dataset} --data-root {params.root} --split {params.split} "
        "--label-fraction {params.fraction} --seed {params.seeds} {params.pretrained} {params.crop} "
        "--out {params.out} --work-dir {params.work_dir} {params.args} {params.setting} > {log} 2>&1"


# `seeds_in_one_job: true`: a cell's runs, one per seed, are one job that trains them one after
# another in one process, which pays its start-up (imports, config; ~5 s on a CPU) once; each
# run, its JSON and its config are the one-seed job's (docs/tuning.md, section 17).
if config.get("seeds_in_one_job"):
    SEEDS = config["seeds"]  # every cell's, which preflight checks

    def cell_path(pattern):
        """``pattern`` of the cell's wildcards, its ``{seed}`` left for `ddep finetune` to fill in."""
        return lambda wc: pattern.format(seed="{seed}", **dict(wc.items()))

    use rule finetune as finetune_seeds with:
        input:
            unpack(lambda wc: finetune_inputs(wc, SEEDS)),
        output:
            expand("resources/runs/{{dataset}}/{{model}}/{{fraction}}/{{run}}/seed{seed}.json", seed=SEEDS),
        params:  # the others are finetune's
            split=cell_path("resources/splits/{dataset}/{fraction}_seed{seed}.txt"),
            seeds=" ".join(map(str, SEEDS)),
            out=cell_path("resources/runs/{dataset}/{model}/{fraction}/{run}/seed{seed}.json"),
            work_dir=cell_path("work/finetune/{dataset}/{model}/{fraction}/{run}/seed{seed}"),
        resources:
            **rule_resources(config, "finetune", runs=len(SEEDS)),
        log:
            "logs/finetune/{dataset}/{model}/{fraction}/{run}/seeds.log",

    ruleorder: finetune_seeds > finetune


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
