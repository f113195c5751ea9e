"""GPU-hours of a sweep before it is submitted, from the config alone (no data, no weights):
jobs x iterations x batch size per GPU x GPUs = training images, divided by a measured
throughput (``benchmarks/throughput.csv``) for the GPU, preset, crop and precision.
`snakemake estimate --cores 1 --configfile config/paper.yaml` and `ddep estimate --configfile
config/paper.yaml` print it.

A denoising pretraining is priced by its own step: the fine-tune's throughput times the
fine-tune's FLOPs per image over the arm's (``benchmarks/step_cost.csv``, counted by
``benchmarks/denoise_step.py``): DDeP's frozen encoder runs forward only and has no optimizer
state, so its step is cheaper than DeP's.

A model with no measured row for the GPU and precision is priced *from FLOPs*: the reference
model's (``REFERENCE_MODEL``) measured images/s there times its counted FLOPs per fine-tune image
is the FLOP/s the GPU achieved; the model's own counted FLOPs per image at its crop divide it.
Counts come from ``benchmarks/step_cost.csv`` (the models of the committed configs, so pricing
them imports no torch) or are made on this CPU at estimate time (``ddep.step_flops``, a few
seconds to a minute per model and crop) and kept in ``COUNT_CACHE``.

Assumptions, said in the printout: training steps only (evaluation and start-up are extra);
several GPUs per job scale linearly; a crop that was not measured is priced by pixel count from
the nearest measured crop of the same GPU, preset and precision; a model priced from FLOPs
reaches the reference's FLOP/s; label fractions are taken of the releases' train-set sizes
(``ddep.data.table``), which only the labelled-image counts use.
"""
from __future__ import annotations

import csv
import datetime
import functools
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ddep.data.splits import split_size
from ddep.sweep import (ABLATIONS, GRID, PRESET_MODELS, SUPERVISED, Model, arm_table, denoise_step,
                        finetune_jobs, parse_run_name, pretraining_parts, sweep_models)
from ddep.sweep_config import RULE_STAGES, crop_size, dataset_of, encoder_weights, gpus, stage_schedule, unlabelled_crop
from ddep.tuning import TUNING, tuning_jobs

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
THROUGHPUTS = BENCHMARKS / "throughput.csv"
STEP_COSTS = BENCHMARKS / "step_cost.csv"
STEP_COST_FIELDS = ["preset", "crop_h", "crop_w", "step", "gflop_per_image", "trainable_params",
                    "cpu_s_per_image", "measured"]
# FLOPs counted at estimate time, kept across runs (the model's config and crop are the key)
COUNT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ddep" / "step_cost.csv"
# Its measured FLOP/s on a GPU and precision price every model measured there under no row of its own.
REFERENCE_MODEL = "r50_vit_b16"
MEASURED, FROM_FLOPS = "measured", "from FLOPs"  # how a job's throughput was found
# The breakdowns the printout gives, each a key of the jobs' rows.
GROUPS = {"rule": "per rule", "arm": "per arm (pretraining + fine-tunes)",
          "dataset": "per dataset", "model": "per model", "part": "per part of the sweep"}


@dataclass(frozen=True)
class Throughput:
    img_per_s: float
    source: str  # the measured row, and how it was scaled
    priced: str = MEASURED  # or FROM_FLOPS


def read_throughputs(path: Path = THROUGHPUTS) -> list[dict]:
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if not row["gpu"].startswith("#")]


def _model_of(row: dict) -> str:
    """A measured row's model name (its ``preset`` column: a preset or any model spec)."""
    return Model(row.get("model") or row["preset"]).name


def _nearest_crop(rows: list[dict], crop: tuple[int, int]) -> dict:
    """The measured row whose crop is nearest to ``crop`` in pixels."""
    return min(rows, key=lambda r: abs(int(r["crop_h"]) * int(r["crop_w"]) - crop[0] * crop[1]))


def throughput(rows: list[dict], gpu: str, preset: str, crop: tuple[int, int], amp: str) -> Throughput:
    """Images/s for one GPU of kind ``gpu`` at ``crop``; a clear error naming what is missing."""
    preset = Model(preset).name
    same = [r for r in rows if r["gpu"] == gpu and _model_of(r) == preset and r["amp"] == amp]
    if not same:
        have = sorted({(r["gpu"], r["preset"], r["amp"]) for r in rows})
        raise ValueError(f"no measured throughput for gpu={gpu!r} model={preset!r} amp={amp!r} in "
                         f"{THROUGHPUTS}; measured: {have}. Run `python benchmarks/train_step.py "
                         f"--model <its config> --size H W --amp {amp}` on that GPU and add a row")
    row = _nearest_crop(same, crop)
    measured = (int(row["crop_h"]), int(row["crop_w"]))
    scale = measured[0] * measured[1] / (crop[0] * crop[1])
    how = "" if measured == tuple(crop) else f", scaled from {measured[0]}x{measured[1]} by pixels"
    return Throughput(float(row["img_per_s"]) * scale,
                      f"{row['gpu']} {preset} {amp} batch {row['batch']}: {row['img_per_s']} img/s{how}")


def read_step_costs(path: Path = STEP_COSTS) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def count_key(config: str) -> str:
    """What a model's counted FLOPs are filed under: its config (a preset's file name, an mmseg
    config), a local file's with its content hash, so that an edited file is counted again."""
    config = PRESET_MODELS.get(config, config)
    if config.endswith(".py") and not config.startswith("mmseg::") and Path(config).is_file():
        return f"{config}@{hashlib.sha256(Path(config).read_bytes()).hexdigest()[:12]}"
    return config


def step_cost(rows: list[dict], model: str | Model, crop: tuple[int, int], step: str) -> tuple[float, str]:
    """(FLOPs per image of a ``step`` / those of a fine-tune, where it was counted) for the
    model, from the counted crop nearest in pixels (the ratio, not the FLOPs, carries over)."""
    model = Model.parse(model)
    same = [r for r in rows if count_key(r["preset"]) == count_key(model.config)]
    if not same:
        raise ValueError(f"no counted step cost for model {model.name!r} in {STEP_COSTS}; run "
                         f"`python benchmarks/denoise_step.py --preset <its config> --size H W --csv "
                         f"{STEP_COSTS.relative_to(BENCHMARKS.parent)}`")
    pixels = crop[0] * crop[1]
    size = min({(int(r["crop_h"]), int(r["crop_w"])) for r in same},
               key=lambda s: abs(s[0] * s[1] - pixels))
    flops = {r["step"]: float(r["gflop_per_image"]) for r in same
             if (int(r["crop_h"]), int(r["crop_w"])) == size}
    ratio = flops[step] / flops["finetune"]
    return ratio, f"{step} {ratio:.3f}x a fine-tune's FLOPs ({model.name} {size[0]}x{size[1]})"


class StepCosts:
    """Counted GFLOP per image of each step of a model at a crop: ``benchmarks/step_cost.csv``,
    then ``cache``, then a count on this CPU (written to ``cache``)."""

    def __init__(self, committed: Path = STEP_COSTS, cache: Path = COUNT_CACHE) -> None:
        self.cache = cache
        self.rows = read_step_costs(committed) + (read_step_costs(cache) if cache.is_file() else [])

    def _counted(self, model: Model, crop: tuple[int, int]) -> dict[str, float]:
        key = count_key(model.config)
        return {r["step"]: float(r["gflop_per_image"]) for r in self.rows
                if count_key(r["preset"]) == key and (int(r["crop_h"]), int(r["crop_w"])) == tuple(crop)}

    def gflops(self, model: Model, crop: tuple[int, int]) -> dict[str, float]:
        """GFLOP per image of the fine-tune, DeP and DDeP steps at exactly ``crop``."""
        counted = self._counted(model, crop)
        if not counted:
            counted = self._count(model, tuple(crop))
        return counted

    def ratio(self, model: Model, crop: tuple[int, int], step: str) -> tuple[float, str]:
        """As :func:`step_cost`; a model never counted is counted at ``crop`` first."""
        if not any(count_key(r["preset"]) == count_key(model.config) for r in self.rows):
            self._count(model, tuple(crop))
        return step_cost(self.rows, model, crop, step)

    def _count(self, model: Model, crop: tuple[int, int]) -> dict[str, float]:
        import torch

        from ddep.step_flops import step_gflops  # torch and mmseg: only for a model not counted yet

        print(f"counting the FLOPs of {model.name} at {crop[0]}x{crop[1]} on the CPU (once: kept in "
              f"{self.cache})", file=sys.stderr)
        gflops = step_gflops(model, crop)
        where = f"counted by ddep estimate, CPU, torch {torch.__version__}, {datetime.date.today()}"
        rows = [dict(preset=count_key(model.config), crop_h=crop[0], crop_w=crop[1], step=step,
                     gflop_per_image=f"{g:.5g}", trainable_params="", cpu_s_per_image="",
                     measured=where) for step, g in gflops.items()]
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        new = not self.cache.is_file()
        with open(self.cache, "a", newline="") as f:
            out = csv.DictWriter(f, STEP_COST_FIELDS)
            if new:
                out.writeheader()
            out.writerows(rows)
        self.rows += rows
        return {step: float(r["gflop_per_image"]) for step, r in zip(gflops, rows)}


def flops_throughput(rows: list[dict], costs: StepCosts, gpu: str, model: Model,
                     crop: tuple[int, int], amp: str) -> Throughput:
    """Images/s of ``model`` at ``crop`` where it has no measured row: the FLOP/s that
    ``REFERENCE_MODEL`` achieved on ``gpu`` at ``amp`` over the model's counted FLOPs per image."""
    reference = Model(REFERENCE_MODEL)
    refs = [r for r in rows if r["gpu"] == gpu and _model_of(r) == reference.name and r["amp"] == amp]
    if not refs:
        have = sorted({(r["gpu"], r["preset"], r["amp"]) for r in rows})
        raise ValueError(f"no measured throughput for gpu={gpu!r} model={model.name!r} amp={amp!r} in "
                         f"{THROUGHPUTS}, nor for the reference {REFERENCE_MODEL} that would price it "
                         f"from its FLOPs; measured: {have}. Run `python benchmarks/train_step.py "
                         f"--model {REFERENCE_MODEL} --size 512 1024 --batch 4 --amp {amp}` on that GPU "
                         f"and add a row")
    ref = _nearest_crop(refs, crop)
    ref_crop = (int(ref["crop_h"]), int(ref["crop_w"]))
    ref_gflop = costs.gflops(reference, ref_crop)["finetune"]
    achieved = float(ref["img_per_s"]) * ref_gflop  # GFLOP/s
    gflop = costs.gflops(model, crop)["finetune"]
    return Throughput(
        achieved / gflop,
        f"{gpu} {model.name} {amp}: {gflop:.4g} GFLOP per fine-tune image at {crop[0]}x{crop[1]}, "
        f"at the {achieved / 1e3:.1f} TFLOP/s of the reference row {gpu} {REFERENCE_MODEL} {amp} "
        f"batch {ref['batch']} ({ref['img_per_s']} img/s x {ref_gflop:.5g} GFLOP at "
        f"{ref_crop[0]}x{ref_crop[1]})", FROM_FLOPS)


def model_throughput(rows: list[dict], costs: StepCosts, gpu: str, model: Model,
                     crop: tuple[int, int], amp: str) -> Throughput:
    """The measured throughput of ``model`` on ``gpu`` at ``amp`` if it has a row, else the
    one priced from its FLOPs."""
    if any(r["gpu"] == gpu and _model_of(r) == model.name and r["amp"] == amp for r in rows):
        return throughput(rows, gpu, model.name, crop, amp)
    return flops_throughput(rows, costs, gpu, model, crop, amp)


def sweep_jobs(config: dict) -> list[dict]:
    """Every training job of a (schema-valid) sweep, as the workflow runs it: ``rule``,
    ``dataset``, ``arm``, ``part`` (the label-efficiency grid or the ablations) and, for
    fine-tunes, ``label_fraction``."""
    jobs = [dict(rule="finetune", dataset=j["dataset"], model=j["model"], arm=j["arm"],
                 part=j["part"], label_fraction=j["label_fraction"]) for j in finetune_jobs(config)]
    arms = arm_table(config)
    jobs += [dict(rule="pretrain_denoise", dataset=ds, model=m, arm=parse_run_name(run, arms)[0],
                  step=denoise_step(arms[parse_run_name(run, arms)[0]]), part=part)
             for (ds, m, run), part in pretraining_parts(config).items()]
    # the tuning stage (`snakemake tune`): a fine-tune per cell x grid point x development seed
    jobs += [dict(rule="tune_finetune", dataset=j["dataset"], model=j["model"], arm=j["arm"], part=TUNING,
                  label_fraction=j["label_fraction"], point=j["point"]) for j in tuning_jobs(config)]
    # the workflow trains a supervised encoder where a dataset names none (the built-in data)
    supervised = [name for name, arm in arms.items() if arm.encoder == SUPERVISED]
    jobs += [dict(rule="pretrain_supervised", dataset=ds, model=m.name,
                  arm="/".join(supervised) + " encoder", part=GRID)
             for ds in config["datasets"] for m in sweep_models(config)
             if not encoder_weights(config, ds, m)]
    return jobs


def estimate(jobs: list[dict], config: dict, gpu: str, costs: StepCosts | None = None) -> list[dict]:
    """The jobs, each priced: ``images`` (iterations x batch x GPUs), ``gpu_hours``, ``priced``
    (measured or from FLOPs) and the ``sources`` of its price. ``jobs`` items carry ``rule``,
    ``dataset``, ``model`` (default: the config's first) and, for denoising, ``arm``;
    iterations and batch size come from the schedule files and the config's overrides."""
    table, costs = read_throughputs(), costs or StepCosts()
    models = {m.name: m for m in sweep_models(config)}
    # one file parse per (dataset, stage), not per job
    schedule = functools.cache(lambda dataset, stage, arm: stage_schedule(config, dataset, stage, arm))
    amp = config.get("amp", "none")
    speed_of = functools.cache(lambda model, crop: model_throughput(table, costs, gpu, model, crop, amp))
    priced = []
    for job in jobs:
        stage = RULE_STAGES[job["rule"]]  # only a pretraining's schedule depends on its arm
        sched = schedule(job["dataset"], stage, job.get("arm") if stage == "denoise" else None)
        point = job.get("point") or {}  # a tuning run may tune the schedule's length or batch
        iters = point.get("iters", sched["train_cfg"]["max_iters"])
        batch = point.get("batch_size", sched["train_dataloader"]["batch_size"])
        crop = crop_size(config, job["dataset"])
        if job["rule"] == "pretrain_denoise":  # the model runs at the images' crop (DDeP on ImageNet: 224 x 224)
            crop = unlabelled_crop(config, job["dataset"], job["arm"]) or crop
        n_gpus = gpus(config, job["rule"])
        model = models[job["model"]] if "model" in job else next(iter(models.values()))
        speed = speed_of(model, crop)
        sources, img_per_s = {(speed.priced, speed.source)}, speed.img_per_s
        if job["rule"] == "pretrain_denoise":
            ratio, source = costs.ratio(model, crop, job.get("step") or job["arm"])
            img_per_s, sources = img_per_s / ratio, sources | {("step", source)}
        images = iters * batch * n_gpus  # the batch size is per GPU under DDP
        priced.append(dict(job, images=images, gpu_hours=images / img_per_s / 3600,
                           priced=speed.priced, sources=sources))
    return priced


def breakdown(priced: list[dict], key: str) -> pd.DataFrame:
    """Jobs, images, GPU-hours and how they were priced per value of ``key`` (rule, arm, dataset,
    part), each in the order first met."""
    jobs = pd.DataFrame(priced, columns=[key, "images", "gpu_hours", "priced"])
    return jobs.groupby(key, sort=False).agg(
        jobs=("images", "size"), images=("images", "sum"), gpu_hours=("gpu_hours", "sum"),
        priced=("priced", lambda kinds: list(dict.fromkeys(kinds)))).reset_index()


def labelled_images(config: dict) -> list[str]:
    """"dataset: 1/30 = 100, ..." for every dataset whose release size is known: the facts the
    estimate assumes. A count larger than the release's train set is an error."""
    lines = []
    for ds, d in config["datasets"].items():
        size = dataset_of(config, ds).train_images
        if size is None:
            lines.append(f"{ds}: no release (generated by the workflow), fractions of its own size")
            continue
        fractions = dict.fromkeys(j["label_fraction"] for j in finetune_jobs(config) if j["dataset"] == ds)
        try:
            counts = ", ".join(f"{f} = {split_size(f, size):,}" for f in fractions)
        except ValueError as e:
            raise ValueError(f"datasets.{ds}.fractions (or an ablation's fractions): {e} "
                             f"(its release has {size:,} train images)") from None
        lines.append(f"{ds} {size:,} train images ({counts} labelled)")
    return lines


def _hours(hours: float) -> str:
    """Whole hours, or two significant digits below 10 (a built-in sweep costs GPU-seconds)."""
    return f"{hours:,.0f}" if hours >= 10 else f"{hours:.2g}"


def _table(rows: pd.DataFrame, key: str, title: str, gpu: str) -> list[str]:
    """A breakdown and its total as a plain-text table (tabulate's, through pandas)."""
    total = {key: "total", "jobs": rows["jobs"].sum(), "images": rows["images"].sum(),
             "gpu_hours": rows["gpu_hours"].sum(), "priced": []}
    rows = pd.concat([rows, pd.DataFrame([total])], ignore_index=True)
    text = pd.DataFrame({
        title: rows[key].astype(str), "jobs": rows["jobs"].astype(str), "images": rows["images"].map("{:,}".format),
        f"{gpu} GPU-hours": rows["gpu_hours"].map(_hours), "priced": rows["priced"].map(" + ".join),
    }).to_markdown(tablefmt="plain", index=False, colalign=("left", "right", "right", "right", "left"),
                   disable_numparse=True)
    return [line.rstrip() for line in text.splitlines()]


def format_estimate(priced: list[dict], gpu: str, config: dict | None = None) -> str:
    """The tables (per rule, arm, dataset, model and part, each row saying whether its
    throughputs were measured or priced from FLOPs) and a footer saying what each price rests
    on; ``config`` adds the labelled-image counts the fractions stand for."""
    lines: list[str] = []
    for key, title in GROUPS.items():
        if all(key in job for job in priced):  # hand-made job lists may lack some keys
            lines += _table(breakdown(priced, key), key, title, gpu) + [""]
    sources = sorted(set().union(*(j["sources"] for j in priced))) if priced else []
    kinds = {kind: [text for k, text in sources if k == kind] for kind in (MEASURED, FROM_FLOPS, "step")}
    if kinds[MEASURED]:
        lines.append("measured throughputs: " + "; ".join(kinds[MEASURED]))
    if kinds[FROM_FLOPS]:
        lines.append(f"{FROM_FLOPS} (no measured row for the model on {gpu} at this precision: its "
                     f"counted FLOPs at the reference's achieved FLOP/s, which models of other shapes "
                     f"may not reach, see docs/models.md): " + "; ".join(kinds[FROM_FLOPS]))
    if kinds["step"]:
        lines.append("denoising priced by its own step: fine-tune throughput / (" + "; ".join(kinds["step"])
                     + ", counted by benchmarks/denoise_step.py, benchmarks/step_cost.csv)")
    if config is not None:
        lines.append(tuning_line(priced, config, gpu))
        lines.append("assumed (no data read): " + "; ".join(labelled_images(config)))
    lines.append("training steps only (evaluation and start-up extra); linear multi-GPU scaling; "
                 f"{ABLATIONS}: the runs only the ablation blocks add")
    return "\n".join(lines)


def tuning_line(priced: list[dict], config: dict, gpu: str) -> str:
    """The tuning stage's share: its price and the sweep's without it; for a config without one,
    what one grid point on one development seed would add (config `tuning`, ddep.tuning)."""
    tuned = sum(j["gpu_hours"] for j in priced if j.get("part") == TUNING)
    total = sum(j["gpu_hours"] for j in priced)
    if config.get("tuning"):
        return (f"tuning on: {_hours(tuned)} {gpu} GPU-hours of {_hours(total)} (`snakemake tune`; a run that "
                f"reads a committed selection pays {_hours(total - tuned)})")
    grid = [j for j in priced if j.get("part") == GRID and j["rule"] == "finetune"]
    cells = {(j["dataset"], j["model"], j["label_fraction"], j["arm"]) for j in grid}
    per_run = {(j["dataset"], j["model"], j["label_fraction"], j["arm"]): j["gpu_hours"] for j in grid}
    one = sum(per_run[c] for c in cells)
    return (f"tuning off (no `tuning` section): {_hours(total)} {gpu} GPU-hours; tuning on would add "
            f"{_hours(one)} per grid point and development seed ({len(cells)} cells), e.g. "
            f"{_hours(8 * one)} for 4 points x 2 seeds")


def report(config: dict, gpu: str | None = None) -> str:
    """What `snakemake estimate` and `ddep estimate` print for a (schema-valid) config."""
    gpu = gpu or config.get("gpu_model", "H100")
    return format_estimate(estimate(sweep_jobs(config), config, gpu), gpu, config)
