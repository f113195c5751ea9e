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
    log:
        "logs/split/{dataset}/{fraction}_seed{seed}.log",
    shell:
        "ddep split --dataset {wildcards.dataset} {params.dataset} --data-root {params.root} "
        "--fraction {params.fraction} --seed {wildcards.seed} --out {output} > {log} 2>&1"
