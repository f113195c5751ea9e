"""Preflight: a sweep config checked against the disk before any job runs.

Every problem is collected (not just the first) and said in one line that names the config key
and the path, and how to fix it. The Snakefile runs the file-system checks while it is parsed,
so `snakemake -n` already reports them; `ddep check --configfile FILE` runs them and also checks
the model side (model configs, crop sizes, noise settings), which reads the model configs with
mmengine.

This module imports no torch or mmseg. The jobs use the same functions to find their inputs.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from ddep.data.splits import list_train_stems, split_size
from ddep.data.table import (DATASET_DEFS, DatasetNotFoundError, check_dataset, dataset_def,
                             find_images, unpaired)
from ddep.checkpoints import CheckpointError, resolve_checkpoint
from ddep.tuning import check_tuning
from ddep.model_check import SKIP_ENV
from ddep.sweep import (PRESET_ARMS, SOURCE, SUPERVISED, Arm, ArmError, Model, arm_images, arm_table, finetune_jobs, sigma_values,
                        sweep_arms, sweep_models)
from ddep.sweep_config import crop_size, encoder_weights


class PreflightError(ValueError):
    """One or more problems with a sweep config; the message lists every one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) found before any job ran:\n"
                         + "\n".join(f"  - {p}" for p in problems))


def check_unlabelled(folder: str | os.PathLike) -> None:
    """An unlabelled-image folder exists and holds at least one image (flat or ImageNet-style)."""
    if not Path(folder).is_dir():
        raise DatasetNotFoundError(f"unlabelled image folder not found: {folder}")
    if next(find_images(folder), None) is None:
        raise DatasetNotFoundError(
            f"no png/jpg/jpeg images under {folder} (a flat folder or an ImageNet-style tree "
            f"of class folders, e.g. train/n01440764/n01440764_10026.JPEG)")


def _dataset_problems(config: dict, name: str, arms: list[Arm], fractions: Iterable[str],
                      data: bool = True, models: Iterable[Model] = ()) -> list[str]:
    problems, key, d = [], f"datasets.{name}", config["datasets"][name]
    stray = sorted(set(d.get("fraction_seeds") or {}) - set(map(str, d["fractions"])))
    if stray:  # else silently ignored: a typo would run the fraction with the default seeds
        problems.append(f"{key}.fraction_seeds: {', '.join(map(repr, stray))} not in "
                        f"{key}.fractions {list(map(str, d['fractions']))}")
    table = arm_table(config)
    problems += [f"arms ({arm.name}).unlabelled: source, but {key} names no source images; set "
                 f"{key}.unlabelled.source: FOLDER (e.g. ImageNet's train folder)" for arm in arms
                 if arm.denoised and arm.unlabelled == SOURCE and arm.name not in PRESET_ARMS
                 and arm_images(d, arm, table.values())[0] is None]
    try:
        dataset = dataset_def(name, d)
    except ValueError as e:
        return problems + [str(e)]
    if dataset.definition and not d.get("schedules"):
        problems.append(f"{key}.schedules: a dataset of its own trains by another's schedule files "
                        f"(ddep/configs/_base_/schedules): name one of {sorted(DATASET_DEFS)}, "
                        f"e.g. `schedules: builtin`, and change them with `schedule:`")
    try:
        crop_size(config, name)
    except KeyError as e:
        problems.append(e.args[0])
    if d.get("generate") or not data:
        return problems  # the workflow generates the built-in dataset itself
    try:
        check_dataset(dataset, d["root"], name=name)
    except DatasetNotFoundError as e:
        problems.append(f"{key}.root: {e}")
    else:
        problems += [f"{key}.root: {why}" for split in ("train", "val")
                     if (why := unpaired(dataset, d["root"], split))]
        stems = list_train_stems(dataset, d["root"])
        for fraction in fractions:
            try:
                if split_size(fraction, len(stems)) < 1:
                    raise ValueError("it selects no image")
            except ValueError as e:
                problems.append(f"{key}.fractions: {fraction!r} of the {len(stems)} train images "
                                f"under {d['root']}: {e}")
    for arm in sorted((a for a in arms if a.denoised), key=lambda a: a.name):
        folder = arm_images(d, arm, table.values())[0]
        if folder is None:
            continue
        try:
            check_unlabelled(folder)
        except DatasetNotFoundError as e:
            where = f"arms ({arm.name}).unlabelled" if folder == arm.unlabelled else f"{key}.unlabelled ({arm.name})"
            problems.append(f"{where}: {e}; fix the path or set it to null "
                            f"(the dataset's own train images)")
    needs = sorted(a.name for a in arms if a.encoder == SUPERVISED)
    for m in models if needs else ():
        weights = encoder_weights(config, name, m)
        where = f"models ({m.name}).encoder_weights" if m.encoder_weights else f"{key}.encoder_weights"
        if not weights:
            problems.append(f"{key}.encoder_weights: arms {needs} need a supervised encoder for "
                            f"model {m.name}; set a timm name (vit_base_r50_s16_224.orig_in21k) or "
                            f"a .safetensors/.pth file here, or the model's own `encoder_weights:` "
                            f"(e.g. the checkpoint its config's init_cfg names; only the built-in "
                            f"dataset trains its own stand-in)")
            continue
        try:
            resolve_checkpoint(weights)
        except CheckpointError as e:
            problems.append(f"{where} (for arms {needs}): {e}")
    return problems


def _checkpoint_problems(arms: list[Arm]) -> list[str]:
    """Each arm's own encoder checkpoint is there: a file, or a timm name in the local cache."""
    problems = []
    for arm in arms:
        if arm.checkpoint is None:
            continue
        try:
            resolve_checkpoint(arm.checkpoint)
        except CheckpointError as e:
            problems.append(f"arms ({arm.name}).encoder: {e}; encoder is random, supervised, a "
                            f"checkpoint file (relative to the workflow's folder; make one with "
                            f"`ddep pretrain-supervised --out FILE`) or a timm name")
    return problems


def _fit_problems(config: dict, arms: list[Arm], models: list[Model]) -> list[str]:
    """Each arm's encoder checkpoint fits each model's encoder (builds the models: torch)."""
    if not any(arm.checkpoint for arm in arms):
        return []
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import ddep.models  # noqa: F401  (registers the TransUNet)
    from ddep.configs import segmentor_cfg
    from ddep.models.weights import encoder_fit
    register_all_modules(init_default_scope=False)
    problems = []
    for m in models:
        crop = crop_size(config, next(iter(config["datasets"])))
        backbone = MODELS.build(segmentor_cfg(m, 2, crop)["backbone"])
        for arm in arms:
            if arm.checkpoint:
                try:
                    encoder_fit(backbone, arm.checkpoint, m.name)
                except CheckpointError as e:
                    problems.append(f"arms ({arm.name}).encoder: {e}")
    return problems


def _model_problems(config: dict, train_steps: bool = True) -> list[str]:
    """Models, crop sizes and noise settings as the jobs will build them (reads the model
    configs with mmengine); ``train_steps``: then the model check (one training step of every
    model per stage and crop, :mod:`ddep.model_check`)."""
    from ddep.configs import segmentor_cfg
    from ddep.presets import TOKEN_STRIDE

    problems = []
    transunets = []
    try:
        models = sweep_models(config)
    except ValueError as e:
        return [f"models: {e}"]
    readable = []
    for i, model in enumerate(models):
        try:
            backbone = segmentor_cfg(model, 2, (64, 64))["backbone"]
        except ValueError as e:
            problems.append(f"models[{i}]: {e}")
            continue
        readable.append(model)
        if backbone["type"] == "TransUNetEncoder":  # its crops must be multiples of the token stride
            transunets.append(model.name)
    for name, d in config["datasets"].items():
        if not transunets:
            break
        try:
            crops = {"crop_size": list(crop_size(config, name))}
        except (KeyError, ValueError):  # said by the dataset checks
            continue
        crops = {**crops,
                 **{f"unlabelled_crop.{arm}": c for arm, c in (d.get("unlabelled_crop") or {}).items()}}
        for key, crop in crops.items():
            if any(c % TOKEN_STRIDE for c in crop):
                problems.append(
                    f"datasets.{name}.{key}: {crop} cannot run: the TransUNet {transunets} needs "
                    f"multiples of {TOKEN_STRIDE} (its token stride), e.g. "
                    f"{[max(TOKEN_STRIDE, c // TOKEN_STRIDE * TOKEN_STRIDE) for c in crop]}")
    for sigma in dict.fromkeys(j["setting"].sigma for j in finetune_jobs(config) if j["setting"]):
        try:
            sigma_values(sigma)
        except ValueError as e:
            problems.append(f"denoising / ablations: sigma {sigma}: {e}")
    # every model whose config reads trains one step per stage and crop (ddep.model_check)
    if train_steps and readable and os.environ.get(SKIP_ENV) == "skip":
        print(f"model check: skipped ({SKIP_ENV}=skip): no model trained a step", file=sys.stderr)
    elif train_steps and readable:
        from ddep.model_check import check_models, cpu_model
        result = check_models(config, readable)
        print(f"model check: {result.steps} step(s) of {len(readable)} model(s), {result.cached} "
              f"from the cache, {result.seconds:.1f} s ({cpu_model()})", file=sys.stderr, flush=True)
        problems += result.refused.values()
    return problems


def find_problems(config: dict, models: bool = False, data: bool = True) -> list[str]:
    """Every problem of a (schema-valid) sweep config, one line each; ``models`` adds the
    checks that import torch; ``data=False`` leaves out those of the disk (datasets, weights,
    unlabelled folders): what pricing a config needs, nothing that runs. Relative paths are
    taken from the current directory, as the workflow does."""
    try:
        arms = sweep_arms(config)
        jobs, sweep = finetune_jobs(config), sweep_models(config)
    except ArmError as e:
        return [str(e)]
    except ValueError as e:
        return [f"models: {e}"]
    problems = [f"ablations[{i}].datasets: {name!r} is not one of datasets {list(config['datasets'])}"
                for i, block in enumerate(config.get("ablations") or [])
                for name in block.get("datasets", []) if name not in config["datasets"]]
    for name in config["datasets"]:
        dataset_arms = list({j["arm"]: j["arm_spec"] for j in jobs if j["dataset"] == name}.values())
        fractions = dict.fromkeys(j["label_fraction"] for j in jobs if j["dataset"] == name)
        problems += _dataset_problems(config, name, dataset_arms, fractions, data=data, models=sweep)
    if data:
        missing = _checkpoint_problems(arms)
        problems += missing or _fit_problems(config, arms, sweep)
    try:
        check_tuning(config)
    except ValueError as e:
        problems.append(str(e))
    problems += _cell_seed_problems(config, jobs)
    if models and data:
        problems += _label_problems(config)
    # the model configs always (mmengine only); their training steps with ``models``, for a
    # config with no other problem that will run (not one being priced: ``data=False``)
    return problems + _model_problems(config, train_steps=models and data and not problems)


def _cell_seed_problems(config: dict, jobs: list[dict]) -> list[str]:
    """`seeds_in_one_job` makes a job of each cell's runs of `seeds`: no cell may have others."""
    if not config.get("seeds_in_one_job"):
        return []
    cells: dict[tuple, set] = {}
    for j in jobs:
        cells.setdefault((j["dataset"], j["label_fraction"], j["run"]), set()).add(j["seed"])
    odd = sorted({f"{ds} {fraction} {run}" for (ds, fraction, run), seeds in cells.items()
                  if seeds != set(config["seeds"])})
    return [f"seeds_in_one_job: the cells {', '.join(odd[:3])}{' ...' if len(odd) > 3 else ''} are not on "
            f"`seeds` {config['seeds']} (fraction_seeds or ablations[].seeds): drop those, or set "
            f"seeds_in_one_job: false"] if odd else []


def _label_problems(config: dict) -> list[str]:
    """Every label map of each dataset on disk against its class count and ignore index (the
    dataset's config, composed as the jobs compose it), one line per dataset."""
    from ddep.configs import dataset_config
    from ddep.data.table import bad_labels, definition
    problems = []
    for name, d in config["datasets"].items():
        if d.get("generate"):
            continue
        try:
            dataset = dataset_def(name, d)
            cfg = dataset_config(name, definition(d))
            why = bad_labels(dataset, d["root"], cfg.num_classes, cfg.get("ignore_index", 255))
        except (ValueError, OSError):  # said by the layout checks
            continue
        if why:
            problems.append(f"datasets.{name}.root: {why}")
    return problems


def preflight(config: dict, models: bool = False, data: bool = True) -> None:
    """Raise :class:`PreflightError` listing every problem of ``config``."""
    problems = find_problems(config, models=models, data=data)
    if problems:
        raise PreflightError(problems)
