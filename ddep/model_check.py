"""The model check: before any job, every model of a sweep trains one step on this CPU at every
crop it will see, in every stage it takes part in (the supervised stand-in, DeP and DDeP, the
fine-tune), built by the jobs' own functions (:mod:`ddep.configs`, :mod:`ddep.train.jobs`,
:class:`ddep.models.DenoisingPretrainer`). A model that cannot is refused with one line: its
name, the stage, the crop and the reason in words.

A step's result is kept in a cache folder (``.snakemake/ddep-model-check`` under the working
directory, or ``$DDEP_MODEL_CHECK_CACHE``), one JSON file per step, keyed by the model's
resolved config, the step's input size and batch, the library versions and ddep's own model
code, so a workflow pays for each step once.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import platform
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ddep.io import atomic_write_text
from ddep.sweep import (SUPERVISED, Model, arm_images, arm_table, finetune_jobs, parse_run_name,
                        pretrainings, sweep_models)
from ddep.sweep_config import crop_size, encoder_weights, stage_schedule

CACHE_ENV = "DDEP_MODEL_CHECK_CACHE"
# DDEP_MODEL_CHECK=skip: no training steps (tests of other checks on the paper's large models,
# whose steps take minutes on a CPU); the model configs are still read and checked.
SKIP_ENV = "DDEP_MODEL_CHECK"
DEFAULT_CACHE = Path(".snakemake") / "ddep-model-check"
# What a step's result depends on beside its config: the code that builds and trains it.
_CODE = ("model_check.py", "models", "configs/compose.py", "train/jobs.py", "noise.py")
STAGES = {"finetune": "fine-tune", "denoise": "denoising", "supervised": "supervised stand-in"}


@dataclass(frozen=True)
class Step:
    """One training step a model must take: ``stage`` (finetune, denoise, supervised) on
    ``dataset``, its model built for ``crop`` and fed images of ``images`` (h, w)."""

    model: Model
    dataset: str
    stage: str
    crop: tuple[int, int]
    images: tuple[int, int]
    arm: str = ""
    noise_conditioning: bool = False
    setting: object = field(default=None, compare=False)

    @property
    def label(self) -> str:
        arm = f" ({self.arm})" if self.arm else ""
        crop = f"{self.images[0]}x{self.images[1]}"
        if self.images != self.crop:
            crop += f" images, model built for {self.crop[0]}x{self.crop[1]}"
        return f"{STAGES[self.stage]}{arm} at crop {crop} (datasets.{self.dataset})"


def planned_steps(config: dict, models: list[Model] | None = None) -> list[Step]:
    """Every step the sweep's jobs will train, once: per dataset and model, the fine-tune at the
    dataset's crop, each denoising pretraining (its arm's image crop, its noise conditioning),
    and the stand-in where the workflow trains one (the built-in data, no encoder weights)."""
    steps: dict[Step, None] = {}
    jobs = finetune_jobs(config)
    table = arm_table(config)
    names = {(ds, m, name) for ds, m, name in pretrainings(config)}
    for m in models if models is not None else sweep_models(config):
        for ds, d in config["datasets"].items():
            arms = {j["arm"] for j in jobs if j["dataset"] == ds and j["model"] == m.name}
            if not arms:
                continue
            crop = tuple(crop_size(config, ds))
            steps[Step(m, ds, "finetune", crop, crop)] = None
            for _, _, name in sorted(n for n in names if n[:2] == (ds, m.name)):
                arm, setting = parse_run_name(name, table)
                images = tuple(arm_images(d, table[arm], table.values())[1] or crop)
                steps[Step(m, ds, "denoise", crop, images, arm, setting.noise_conditioning == "on",
                           setting)] = None
            supervised = any(table[a].encoder == SUPERVISED for a in arms)
            if d.get("generate") and supervised and not encoder_weights(config, ds, m):
                p = _generated(d["generate"])
                grid, size = (p["height"], p["width"]), (p["source_size"],) * 2
                steps[Step(m, ds, "supervised", grid, size)] = None
    order = {"finetune": 0, "denoise": 1, "supervised": 2}  # fine-tune first: every arm needs it
    return sorted(steps, key=lambda s: (s.model.name, s.dataset, order[s.stage], s.arm, s.images))


def _generated(generate: dict) -> dict:
    """The built-in generator's parameters for a dataset's ``generate:`` (its defaults filled in)."""
    import inspect

    from ddep.data.builtin import generate_builtin
    defaults = {k: p.default for k, p in inspect.signature(generate_builtin).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return {**defaults, **generate}


# --- building a step as its job does ---------------------------------------------------------

def _step_config(step: Step, config: dict):
    """The step's model and optimizer configs, composed as its job composes them."""
    from mmengine.config import Config

    from ddep.configs import RUNTIME, denoise_config, finetune_config
    from ddep.data.table import definition
    from ddep.data.source import SOURCE_CLASSES
    from ddep.noise import NoiseConfig
    from ddep.sweep import sigma_values
    from ddep.train.jobs import (JobOptions, apply_run, classifier_cfg, denoise_model_overrides,
                                 finetune_model_overrides)
    stage = {"finetune": "finetune", "denoise": "denoise", "supervised": "supervised"}[step.stage]
    sched = stage_schedule(config, step.dataset, stage)
    opts = JobOptions(work_dir=Path(tempfile.gettempdir()) / "ddep-model-check", model=step.model,
                      channels_last=bool(config.get("channels_last")))
    root = config["datasets"][step.dataset]["root"]
    own = definition(config["datasets"][step.dataset])
    if step.stage == "finetune":
        cfg = finetune_config(step.dataset, step.model, root, crop_size=step.crop, definition=own)
        cfg.merge_from_dict(dict(model=finetune_model_overrides(cfg, opts)))
    elif step.stage == "denoise":
        s = step.setting
        v = sigma_values(s.sigma)
        noise = NoiseConfig(sigma=v[0] if len(v) == 1 else v, formulation=s.formulation, target=s.target)
        cfg = denoise_config(step.dataset, step.model, root, crop_size=step.crop,
                             image_crop=step.images, definition=own)
        cfg.merge_from_dict(dict(model=denoise_model_overrides(
            cfg, noise, opts, arm_table(config)[step.arm].frozen_encoder,
            noise_conditioning=step.noise_conditioning)))
    else:
        cfg = Config.fromfile(str(RUNTIME))
        cfg.model = classifier_cfg(step.model, len(SOURCE_CLASSES), step.crop, step.images)
    cfg = apply_run(cfg, opts, sched)
    return cfg, sched["train_dataloader"]["batch_size"]


@functools.cache
def _code_hash() -> str:
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for part in _CODE:
        for path in sorted((root / part).rglob("*.py")) if (root / part).is_dir() else [root / part]:
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


@functools.cache
def _versions() -> dict:
    import importlib.metadata as md
    out = {}
    for pkg in ("torch", "mmcv", "mmengine", "mmsegmentation", "mmpretrain", "timm"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def step_key(step: Step, cfg, batch: int) -> str:
    """The cache key of a step: its resolved model and optimizer configs, input size, batch,
    library versions and ddep's model code."""
    d = dict(stage=step.stage, model=cfg.model.to_dict(), optim=cfg.optim_wrapper.to_dict(),
             images=list(step.images), batch=batch, versions=dict(_versions()), code=_code_hash())
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _batch(step: Step, model, n: int) -> dict:
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    h, w = step.images
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g) for _ in range(n)]
    samples = []
    for _ in range(n):
        meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))
        s = SegDataSample(metainfo=meta)
        if step.stage == "finetune":
            classes = model.decode_head.num_classes
            label = torch.randint(0, classes, (1, h, w), generator=g)
            label[:, : h // 8] = 255  # an ignored band, as real label maps have
            s.gt_sem_seg = PixelData(data=label)
        elif step.stage == "supervised":
            s.set_metainfo(dict(gt_label=0))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


class _Pools:
    """Records the input of every fixed-kernel pooling layer, to say which one a crop is too small for."""

    def __init__(self, model) -> None:
        import torch.nn as nn
        self.seen: list[tuple[str, int, tuple[int, int]]] = []
        self.handles = []
        for name, m in model.named_modules():
            if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)):
                k = m.kernel_size if isinstance(m.kernel_size, int) else max(m.kernel_size)
                self.handles.append(m.register_forward_pre_hook(
                    lambda mod, args, name=name, k=k: self.seen.append((name, k, tuple(args[0].shape[-2:])))))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


# Errors whose cause a user can act on, said in words: (pattern in the error, reason).
KNOWN_CAUSES = (
    (re.compile(r"gt_edge_map"), "its training needs boundary labels (mmseg's GenerateEdge "
                                 "transform), which ddep's pipelines do not make: drop it"),
    (re.compile(r"Expected more than 1 value per channel when training"),
     "a BatchNorm layer sees a 1x1 feature map, which a batch of one image cannot train: "
     "give it a per-GPU batch of 2 or more"),
    # K-Net's and MaskFormer's heads take no class count: they predict masks from queries
    (re.compile(r"unexpected keyword argument '(num_classes|in_channels)'"),
     "its decode head is not a per-pixel head (mmseg's BaseDecodeHead; a query-based mask "
     "head): ddep sets the head's class count and replaces its conv_seg projection: drop it"),
)


def _raised_by_ddep(e: BaseException) -> bool:
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).is_relative_to(Path(__file__).parent)


def _reason(e: BaseException, step: Step, pools: _Pools | None) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "Output size is too small" in text and pools and pools.seen:
        name, k, (fh, fw) = pools.seen[-1]
        sh, sw = step.images[0] / fh, step.images[1] / fw
        need = (int(k * sh), int(k * sw))
        return (f"its head pools with a fixed {k}-pixel kernel ({name}) on a {fh}x{fw} feature "
                f"map: give it crops of at least {need[0]}x{need[1]} or drop it")
    for pattern, reason in KNOWN_CAUSES:
        if pattern.search(text):
            return reason
    if step.images != step.crop and re.search(r"size of tensor a \(\d+\) must match", text):
        return (f"its backbone takes only the input size it is built for ({step.crop[0]}x"
                f"{step.crop[1]}), not {step.images[0]}x{step.images[1]} "
                f"images: leave out the arms that denoise at that size ({step.arm}) or drop it")
    if isinstance(e, ValueError) and (type(e).__module__.startswith("ddep") or _raised_by_ddep(e)):
        return text  # ddep's own messages are already in words
    return f"{type(e).__name__}: {text[:300]}"


def train_step(step: Step, cfg, batch: int) -> None:
    """One training step of ``cfg.model`` at ``batch`` images of the step's size, on the CPU,
    as the job's Runner takes it (init_weights, the job's optimizer, ``train_step``)."""
    import torch
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS
    pools = None
    try:  # building is part of the check: a head or backbone may refuse the config or crop
        model = MODELS.build(cfg.model)
        model.init_weights()
        pools = _Pools(model)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        model.train()
        torch.manual_seed(0)
        model.train_step(_batch(step, model, batch), wrapper)
    except Exception as e:  # noqa: BLE001  (any failure is the news, said in one line)
        e.ddep_reason = _reason(e, step, pools)
        raise
    finally:
        if pools:
            pools.remove()


@dataclass
class CheckResult:
    refused: dict[str, str]          # model name -> its one line
    steps: int = 0
    cached: int = 0
    seconds: float = 0.0


def _cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def _run_step(step: Step, config: dict) -> tuple[str | None, bool]:
    """(the reason the step fails, or None; whether the cache answered)."""
    cfg, sched_batch = _step_config(step, config)
    key = step_key(step, cfg, 1)
    path = _cache_dir() / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text()).get("reason"), True
    start = time.time()
    reason = None
    try:
        _in_isolation(train_step, step, cfg, 1)
    except Exception as e:  # noqa: BLE001
        reason = getattr(e, "ddep_reason", None) or f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
        if reason.startswith("a BatchNorm layer sees a 1x1") and sched_batch >= 2:
            try:  # a batch of one is the check's, not the job's: take the job's smallest batch
                _in_isolation(train_step, step, cfg, 2)
                reason = None
            except Exception as e2:  # noqa: BLE001
                reason = getattr(e2, "ddep_reason", None) or f"{type(e2).__name__}: {e2}"
    record = dict(model=step.model.name, step=step.label, reason=reason,
                  seconds=round(time.time() - start, 2), cpu=cpu_model())
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    return reason, False


def _in_isolation(fn, *args) -> None:
    """``fn(*args)`` with one thread, gradients on and mmseg's registry scope."""
    import logging

    import torch
    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope
    threads = torch.get_num_threads()
    logger = MMLogger.get_current_instance()
    level = logger.level
    torch.set_num_threads(1)
    logger.setLevel(logging.ERROR)  # init_weights logs every tensor
    try:
        with DefaultScope.overwrite_default_scope("mmseg"), \
                contextlib.redirect_stdout(io.StringIO()):  # some backbones print while built
            fn(*args)
    finally:
        torch.set_num_threads(threads)
        logger.setLevel(level)


def check_models(config: dict, models: list[Model] | None = None, log=None) -> CheckResult:
    """Run (or read from the cache) every planned step; a model's first failing step refuses
    it, with one line. ``log``: a function that takes progress lines (default: none)."""
    import ddep.data.datasets  # noqa: F401  (registers ddep's datasets and models in mmseg's registries)
    import ddep.models  # noqa: F401
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    result = CheckResult(refused={})
    start = time.time()
    for step in planned_steps(config, models):
        if step.model.name in result.refused:
            continue
        try:
            reason, cached = _run_step(step, config)
        except ValueError as e:  # its config cannot even be composed
            reason, cached = str(e).splitlines()[0], False
        result.steps += 1
        result.cached += cached
        if log:
            log(f"model check: {step.model.name}: {step.label}: {'refused' if reason else 'ok'}"
                f"{' (cached)' if cached else ''}")
        if reason:
            result.refused[step.model.name] = (f"models ({step.model.name}): refused before any job: "
                                               f"its {step.label} fails: {reason}")
    result.seconds = time.time() - start
    return result


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
