rule aggregate:
    input:
        runs=FINETUNES.json,  # every run: Snakemake itself says what is missing (`snakemake -n`)
        pretrainings=PRETRAINING_JSONS,
    output:
        RESULT_TABLES,
        PRETRAINING_TABLES,
        [report(t, category="Tables", caption="../report/tables.rst") for t in TABLES if t.endswith(".md")],
        report(CLAIMS_TABLE, category="Tables", caption="../report/claims.rst"),
        [t for t in TABLES if t.endswith(".tex")],
        COMPARISON_TABLES,
    params:
        noise=DEFAULT_NOISE.slug,
        out=RESULTS,
        pretrainings=f"--pretrainings {' '.join(PRETRAINING_JSONS)}" if PRETRAINING_JSONS else "",
    log:
        "logs/aggregate.log",
    shell:
        "ddep aggregate --runs {input.runs} --out {params.out} --default-noise {params.noise} "
        "{params.pretrainings} 2>&1 | tee {log}"


rule figures:
    input:
        # figures are drawn from these CSVs alone
        csv_path(RESULTS, "summary"),
        csv_path(RESULTS, "claims"),
        COMPARISON_TABLES[:1],
    output:
        [report(f, category="Figures", caption="../report/figures.rst") for f in FIGURES if f.endswith(".png")],
        [report(f, category="Figures", caption="../report/claims_figure.rst")
         for f in CLAIMS_FIGURES if f.endswith(".png")],
        [f for f in FIGURES + CLAIMS_FIGURES if f.endswith(".pdf")],
        COMPARISON_FIGURES,
    params:
        noise=DEFAULT_NOISE.slug,
        results=RESULTS,
        out=FIGURES_DIR,
    log:
        "logs/figures.log",
    shell:
        "ddep figures --results {params.results} --out {params.out} --default-noise {params.noise} > {log} 2>&1"


# `snakemake replot`: redraw the figures (the claims figure too) from the CSVs alone (no
# training, no aggregation).
rule replot:
    params:
        noise=DEFAULT_NOISE.slug,
        results=RESULTS,
        out=FIGURES_DIR,
    shell:
        "ddep figures --results {params.results} --out {params.out} --default-noise {params.noise}"


# `snakemake estimate --cores 1 --configfile config/paper.yaml [--config gpu_model=H100]`: jobs, training
# images and GPU-hours per rule, arm, dataset and part, from the config alone (nothing runs, no
# data needed: the Snakefile skips the preflight's disk checks for this target alone).
rule estimate:
    run:
        from ddep.estimate import report

        print(report(config, config["gpu_model"]))
