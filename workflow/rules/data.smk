GENERATED = {d["root"]: d["generate"] for d in config["datasets"].values() if d.get("generate")}


rule generate_builtin:
    output:
        "{root}/meta.json",
    wildcard_constraints:
        root="|".join(map(re.escape, GENERATED)) or "(?!)",
    params:
        options=lambda wc: " ".join(f"--{k.replace('_', '-')} {v}" for k, v in GENERATED[wc.root].items()),
    log:
        "logs/generate/{root}.log",
    shell:
        "ddep generate-builtin --root {wildcards.root} {params.options} > {log} 2>&1"


rule split:
    input:
        dataset_ready,
    output:
        "resources/splits/{dataset}/{fraction}_seed{seed}.txt",
    params:
        root=lookup(dpath="datasets/{dataset}/root", within=config),
        fraction=label_fraction,
        dataset=dataset_args,
        development=development_args,
    log:
        "logs/split/{dataset}/{fraction}_seed{seed}.log",
    shell:
        "ddep split --dataset {wildcards.dataset} {params.dataset} --data-root {params.root} {params.development} "
        "--fraction {params.fraction} --seed {wildcards.seed} --out {output} > {log} 2>&1"


# A paper dataset's development slice (`development.n_images` train images), which the tuning
# stage evaluates on and no labelled split contains.
rule development_split:
    input:
        dataset_ready,
    output:
        "resources/splits/{dataset}/development.txt",
    params:
        root=lookup(dpath="datasets/{dataset}/root", within=config),
        dataset=dataset_args,
        development=development_args,
    log:
        "logs/split/{dataset}/development.log",
    shell:
        "ddep split --dataset {wildcards.dataset} {params.dataset} --data-root {params.root} {params.development} "
        "--fraction development --out {output} > {log} 2>&1"
