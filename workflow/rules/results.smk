rule plan:
    output:
        "results/expected.csv",
    params:
        runs=lambda wc: FINETUNES.assign(sigma=FINETUNES.sigma.map(lambda s: s if s == "-" else sigma_label(s)))[
            ["dataset", "label_fraction", "arm", "sigma", "seed"]].to_csv(index=False),
    run:
        from ddep.analysis.common import atomic_write_text

        atomic_write_text(output[0], params.runs)


rule aggregate:
    input:
        runs=FINETUNES.json,
        expected="results/expected.csv",
    output:
        RESULT_TABLES,
        [report(t, category="Tables", caption="../report/tables.rst") for t in TABLES if t.endswith(".md")],
        report(CLAIMS_TABLE, category="Tables", caption="../report/claims.rst"),
        [t for t in TABLES if t.endswith(".tex")],
    params:
        sigma=DEFAULT_SIGMA_LABEL,
    log:
        "logs/aggregate.log",
    shell:
        "ddep aggregate --runs {input.runs} --expected {input.expected} --out results "
        "--default-sigma '{params.sigma}' 2>&1 | tee {log}"


rule figures:
    input:
        "results/summary.csv",
    output:
        [report(f, category="Figures", caption="../report/figures.rst") for f in FIGURES if f.endswith(".png")],
        [f for f in FIGURES if f.endswith(".pdf")],
    params:
        sigma=DEFAULT_SIGMA_LABEL,
    log:
        "logs/figures.log",
    shell:
        "ddep figures --results results --out figures --default-sigma '{params.sigma}' > {log} 2>&1"


# `snakemake replot`: redraw figures/ from results/*.csv alone (no training, no aggregation).
rule replot:
    params:
        sigma=DEFAULT_SIGMA_LABEL,
    shell:
        "ddep figures --results results --out figures --default-sigma '{params.sigma}'"


# `snakemake estimate --configfile config/paper.yaml [--config gpu_model=H100]`: jobs, training
# images and GPU-hours per rule before anything is submitted (nothing runs).
rule estimate:
    run:
        from ddep.estimate import estimate, format_estimate

        jobs = [dict(rule="finetune", dataset=ds) for ds in FINETUNES.dataset]
        pretrained = FINETUNES[FINETUNES.arm.isin(DENOISING_ARMS)]
        jobs += [dict(rule="pretrain_denoise", dataset=ds)
                 for ds, _ in pretrained.groupby(["dataset", "run"]).groups]
        jobs += [dict(rule="pretrain_supervised", dataset=ds)
                 for ds, d in config["datasets"].items() if not d.get("encoder_weights")]
        print(format_estimate(estimate(jobs, config, config["gpu_model"]), config["gpu_model"]))
