# `snakemake tune --cores all`: the tuning stage (ddep.tuning). Every arm of the grid, fine-tuned at
# every point of `tuning.grid` on the development seeds (rule tune_finetune, in finetune.smk), then
# one rule selects each cell's setting and rewrites `tuning.selection`, which the held-out
# fine-tunes read. The default target never depends on it: a run reads the committed selection.
DEVELOPMENT_LISTS = {ds: f"resources/splits/{ds}/development.txt" for ds, d in config["datasets"].items()
                     if d.get("development")}

if config.get("tuning"):

    rule tuning_results:
        input:
            runs=TUNING_JOBS.json,
            development=list(DEVELOPMENT_LISTS.values()),
        output:
            selection=config["tuning"]["selection"],
            csv=csv_path(RESULTS, "tuning"),
            table=table_paths(RESULTS, "tuning")[0],
            figures=figure_paths(FIGURES_DIR, "tuning"),
        params:
            grid=lambda wc: json.dumps(config["tuning"]["grid"]),
            seeds=" ".join(map(str, config["tuning"]["seeds"])),
            # what each dataset's development split is: its scenes' root, or its slice's list
            roots=" ".join(f"{ds}={DEVELOPMENT_LISTS.get(ds, d['root'])}" for ds, d in config["datasets"].items()),
            split=DEVELOPMENT_SPLIT,
            results=RESULTS,
            figures=FIGURES_DIR,
        log:
            "logs/tuning_results.log",
        shell:
            "ddep tuning --runs {input.runs} --grid '{params.grid}' --seeds {params.seeds} "
            "--data-root {params.roots} --eval-split {params.split} --selection {output.selection} "
            "--results {params.results} --figures {params.figures} 2>&1 | tee {log}"

    rule tune:
        input:
            rules.tuning_results.output,
