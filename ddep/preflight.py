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
from ddep.data.table import DatasetNotFoundError, check_dataset, find_images
from ddep.checkpoints import CheckpointError, resolve_checkpoint
from ddep.sweep import DENOISING_ARMS, SUPERVISED_ARMS, Model, finetune_jobs, sigma_values, sweep_models
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


def unlabelled_source(dataset: dict, arm: str) -> str | None:
    """The unlabelled-image folder of ``arm`` in a dataset's config (None: its train images)."""
    source = dataset.get("unlabelled")
    return source.get(arm) if isinstance(source, dict) else source


def _dataset_problems(config: dict, name: str, arms: set[str], fractions: Iterable[str],
                      data: bool = True, models: Iterable[Model] = ()) -> list[str]:
    problems, key, d = [], f"datasets.{name}", config["datasets"][name]
    stray = sorted(set(d.get("fraction_seeds") or {}) - set(map(str, d["fractions"])))
    if stray:  # else silently ignored: a typo would run the fraction with the default seeds
        problems.append(f"{key}.fraction_seeds: {', '.join(map(repr, stray))} not in "
                        f"{key}.fractions {list(map(str, d['fractions']))}")
    if d.get("generate") or not data:
        return problems  # the workflow generates the built-in dataset itself
    try:
        check_dataset(name, d["root"])
    except DatasetNotFoundError as e:
        problems.append(f"{key}.root: {e}")
    else:
        stems = list_train_stems(name, d["root"])
        for fraction in fractions:
            try:
                if split_size(fraction, len(stems)) < 1:
                    raise ValueError("it selects no image")
            except ValueError as e:
                problems.append(f"{key}.fractions: {fraction!r} of the {len(stems)} train images "
                                f"under {d['root']}: {e}")
    for arm in sorted(arms & set(DENOISING_ARMS)):
        folder = unlabelled_source(d, arm)
        if folder is None:
            continue
        try:
            check_unlabelled(folder)
        except DatasetNotFoundError as e:
            problems.append(f"{key}.unlabelled ({arm}): {e}; fix the path or set it to null "
                            f"(the dataset's own train images)")
    needs = sorted(arms & set(SUPERVISED_ARMS))
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
        crops = {"crop_size": list(crop_size(config, name)),
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
    if train_steps and not problems:  # every model trains one step per stage and crop (ddep.model_check)
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
        jobs, models = finetune_jobs(config), sweep_models(config)
    except ValueError as e:
        return [f"models: {e}"]
    problems = [f"ablations[{i}].datasets: {name!r} is not one of datasets {list(config['datasets'])}"
                for i, block in enumerate(config.get("ablations") or [])
                for name in block.get("datasets", []) if name not in config["datasets"]]
    for name in config["datasets"]:
        arms = {j["arm"] for j in jobs if j["dataset"] == name}
        fractions = dict.fromkeys(j["label_fraction"] for j in jobs if j["dataset"] == name)
        problems += _dataset_problems(config, name, arms, fractions, data=data, models=models)
    if models:
        problems += _model_problems(config)
    return problems


def preflight(config: dict, models: bool = False, data: bool = True) -> None:
    """Raise :class:`PreflightError` listing every problem of ``config``."""
    problems = find_problems(config, models=models, data=data)
    if problems:
        raise PreflightError(problems)
