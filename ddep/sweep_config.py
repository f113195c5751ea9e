"""A sweep config, loaded and validated, and what every reader derives from it: the schedule
overrides of a stage, the GPUs of a rule, a dataset's crop, which encoder weights a model
starts from. The CLI, preflight, the estimate, the protocol page and the workflow's rules read
these here rather than each from the raw dict.

Imports no torch or mmseg (the Snakefile reads it while Snakemake parses); the schedule files
are read with mmengine's Config only when :func:`stage_schedule` is called.
"""
from __future__ import annotations

from pathlib import Path

from ddep.sweep import encoder_weights  # noqa: F401  (re-exported: which encoder weights win)

SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"
# The training rules of the workflow and the schedule stage each one runs.
RULE_STAGES = {"pretrain_supervised": "supervised", "pretrain_denoise": "denoise", "finetune": "finetune",
               "tune_finetune": "finetune"}
# A rule that runs on another's cluster resources: the tuning stage's fine-tunes are fine-tunes.
RESOURCES_OF = {"tune_finetune": "finetune"}


def load_config(paths: list[str], schema: Path = SCHEMA) -> dict:
    """Sweep config files merged in order as Snakemake merges them, validated by the workflow's
    schema (which fills in its defaults)."""
    import yaml
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import update_config, validate
    config: dict = {}
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        update_config(config, yaml.safe_load(Path(path).read_text()) or {})
    try:
        validate(config, str(schema))
    except WorkflowError as e:
        raise ValueError(str(e)) from None
    return config


def schedule_overrides(config: dict, stage: str, dataset: str | None = None, arm: str | None = None) -> dict:
    """The config's ``schedule.<stage>`` changes to the schedule file (iters, batch_size, lr, ...);
    for a denoising pretraining, then its dataset's ``denoise_schedule.<arm>`` (each pretraining's
    length sized to its own plateau)."""
    overrides = dict((config.get("schedule") or {}).get(stage) or {})
    if stage == "denoise" and dataset is not None and arm is not None:
        overrides.update((config["datasets"][dataset].get("denoise_schedule") or {}).get(arm) or {})
    return overrides


def stage_schedule(config: dict, dataset: str, stage: str, arm: str | None = None) -> dict:
    """A dataset's schedule file for ``stage`` (those of the dataset its ``schedules:`` names,
    else its own) with the config's overrides, as the job (of ``arm``, for a pretraining) runs it."""
    from ddep.configs import schedule_config  # mmengine: only where a schedule file is read
    return schedule_config(schedule_source(config, dataset), stage,
                           **schedule_overrides(config, stage, dataset, arm))


def schedule_source(config: dict, dataset: str) -> str:
    """The dataset whose schedule files ``dataset`` trains by (``schedules:``, else itself)."""
    return config["datasets"][dataset].get("schedules") or dataset


def dataset_of(config: dict, dataset: str):  # -> ddep.data.table.DatasetDef
    """The dataset a sweep entry means (its own definition, else ddep's of its name)."""
    from ddep.data.table import dataset_def
    return dataset_def(dataset, config["datasets"][dataset])


def rule_resources(config: dict, rule: str, runs: int = 1) -> dict:
    """Per-rule cluster resources from the config (gpu, cpus_per_gpu, mem_mb, runtime, ...); a job
    of ``runs`` runs one after another gets ``runs`` times the runtime of one."""
    resources = dict((config.get("resources") or {}).get(RESOURCES_OF.get(rule, rule)) or {})
    if "runtime" in resources:
        resources["runtime"] *= runs
    return resources


def gpus(config: dict, rule: str) -> int:
    """GPUs per job of ``rule`` (at least 1; more than 1 runs DDP under torchrun)."""
    return max(1, int(rule_resources(config, rule).get("gpu", 1) or 1))


def crop_size(config: dict, dataset: str) -> tuple[int, int]:
    """A dataset's training crop: the config's ``crop_size``, else its dataset file's."""
    from ddep.data.table import entry_literal
    d = config["datasets"][dataset]
    return tuple(d.get("crop_size") or entry_literal(dataset, d, "crop_size"))


def unlabelled_crop(config: dict, dataset: str, arm: str) -> tuple[int, int] | None:
    """The crop [h, w] an arm's denoising pretraining cuts from its unlabelled images when they are not
    shaped like the dataset's (``unlabelled_crop``: ImageNet's 224 x 224); None: the dataset's crop."""
    crop = (config["datasets"][dataset].get("unlabelled_crop") or {}).get(arm)
    return tuple(crop) if crop else None
