# The sweep, expanded once from the config into tables of jobs.
import re

import pandas as pd

from ddep.preflight import unlabelled_source
from ddep.sweep import DENOISING_ARMS


def sigma_slug(sigma):
    """0.2 -> '0.2'; [0.2, 0.3] -> 'U0.2-0.3' (file-name safe)."""
    if isinstance(sigma, (list, tuple)):
        return f"U{float(sigma[0]):g}-{float(sigma[1]):g}"
    return f"{float(sigma):g}"


def sigma_args(slug):
    return "--sigma " + (" ".join(slug[1:].split("-")) if slug.startswith("U") else slug)


def fraction_slug(fraction):
    return str(fraction).replace("/", "_")


def run_name(arm, sigma):
    return f"{arm}_s{sigma}" if arm in DENOISING_ARMS else arm


def _finetunes():
    rows = []
    default = sigma_slug(config["denoising"]["sigma"])
    sweep = config.get("sigma_sweep") or {}
    sweep_sigmas = [sigma_slug(s) for s in sweep.get("fixed", []) + sweep.get("uniform", [])]
    for ds, d in config["datasets"].items():
        for fraction in d["fractions"]:
            seeds = (d.get("fraction_seeds") or {}).get(str(fraction), config["seeds"])
            for arm in config["arms"]:
                for seed in seeds:
                    rows.append((ds, str(fraction), arm, default if arm in DENOISING_ARMS else "-", seed))
        for fraction in sweep.get("fractions", []):
            for arm in sweep.get("arms", []):
                for sigma in sweep_sigmas:
                    for seed in sweep.get("seeds", config["seeds"]):
                        rows.append((ds, str(fraction), arm, sigma, seed))
    jobs = pd.DataFrame(rows, columns=["dataset", "label_fraction", "arm", "sigma", "seed"])
    jobs = jobs.drop_duplicates().reset_index(drop=True)
    jobs["fraction"] = jobs.label_fraction.map(fraction_slug)
    jobs["run"] = [run_name(a, s) for a, s in zip(jobs.arm, jobs.sigma)]
    jobs["json"] = [f"resources/runs/{r.dataset}/{r.fraction}/{r.run}/seed{r.seed}.json"
                    for r in jobs.itertuples()]
    return jobs


FINETUNES = _finetunes()
RESULT_TABLES = ["results/runs.csv", "results/summary.csv", "results/paired.csv", "results/claims.csv"]
CLAIMS_TABLE = "results/tables/claims.md"  # all datasets in one table, written with the CSVs
_KINDS = ("label_efficiency", "sigma") if (config.get("sigma_sweep") or {}).get("fractions") else ("label_efficiency",)
TABLES = [f"results/tables/{ds}_{kind}.{ext}" for ds in config["datasets"] for kind in _KINDS
          for ext in ("md", "tex")]
FIGURES = [f"figures/{ds}_{kind}.{ext}" for ds in config["datasets"] for kind in _KINDS
           for ext in ("png", "pdf")]


def dataset(wc):
    return config["datasets"][wc.dataset]


def dataset_ready(wc):
    """The built-in dataset is a workflow output; a paper dataset must already be on disk."""
    d = dataset(wc)
    return f"{d['root']}/meta.json" if d.get("generate") else []


def supervised_encoder(wc):
    """The user's timm checkpoint (file or hub name), else the workflow's supervised stand-in."""
    weights = dataset(wc).get("encoder_weights")
    return weights if weights else f"resources/weights/{wc.dataset}/supervised.safetensors"


def supervised_encoder_input(wc):
    """Only the workflow's own encoder is a DAG input (a hub name is not a file)."""
    return [] if dataset(wc).get("encoder_weights") else supervised_encoder(wc)


def schedule_args(stage):
    flags = {"iters": "--iters", "batch_size": "--batch-size", "lr": "--lr",
             "encoder_lr_mult": "--encoder-lr-mult", "checkpoint_interval": "--checkpoint-interval",
             "num_workers": "--num-workers"}
    sched = (config.get("schedule") or {}).get(stage) or {}
    return " ".join(f"{flags[k]} {v}" for k, v in sched.items())


def resources(rule_name):
    """Per-rule cluster resources from the config (gpu, cpus_per_gpu, mem_mb, runtime, ...)."""
    return dict((config.get("resources") or {}).get(rule_name) or {})


def ddep(rule_name):
    """The command: `ddep`, or torchrun over `ddep.cli` when the rule asks for several GPUs.
    `exec` replaces the rule's shell, so the SIGTERM that SLURM sends before the time limit or
    on preemption reaches the job (which checkpoints and exits) with no shell dying first."""
    gpus = int(resources(rule_name).get("gpu", 0) or 0)
    return f"exec torchrun --standalone --nproc_per_node {gpus} -m ddep.cli" if gpus > 1 else "exec ddep"


def crop_args(wc):
    """A dataset's `crop_size` override (training crop and sliding window), if it sets one."""
    crop = dataset(wc).get("crop_size")
    return f"--crop-size {crop[0]} {crop[1]}" if crop else ""


def job_args(rule_name, stage):
    """Options every training job takes: preset, precision, launcher, schedule overrides."""
    gpus = int(resources(rule_name).get("gpu", 0) or 0)
    launcher = " --launcher pytorch" if gpus > 1 else ""
    return f"--preset {config['preset']} --amp {config.get('amp', 'none')}{launcher} {schedule_args(stage)}"


def sigma_label(slug):
    """The label the run JSON carries (ddep.noise.NoiseConfig.label): '0.2' or 'U(0.2,0.3)'."""
    return f"U({slug[1:].replace('-', ',')})" if slug.startswith("U") else slug


DEFAULT_SIGMA_LABEL = sigma_label(sigma_slug(config["denoising"]["sigma"]))
