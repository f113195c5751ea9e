"""GPU-hours of a sweep before it is submitted, from the config alone (no data, no weights):
jobs x iterations x batch size per GPU x GPUs = training images, divided by a measured
throughput (``benchmarks/throughput.csv``) for the GPU, preset, crop and precision.
`snakemake estimate --cores 1 --configfile config/paper.yaml` and `ddep estimate --configfile
config/paper.yaml` print it.

A denoising pretraining is priced by its own step: the fine-tune's throughput times the
fine-tune's FLOPs per image over the arm's (``benchmarks/step_cost.csv``, counted by
``benchmarks/denoise_step.py``): DDeP's frozen encoder runs forward only and has no optimizer
state, so its step is cheaper than DeP's.

Assumptions, said in the printout: training steps only (evaluation and start-up are extra);
several GPUs per job scale linearly; a crop that was not measured is priced by pixel count from
the nearest measured crop of the same GPU, preset and precision; label fractions are taken of
the releases' train-set sizes (``ddep.data.table``), which only the labelled-image counts use.
"""
from __future__ import annotations

import csv
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ddep.configs import schedule_config
from ddep.data.splits import split_size
from ddep.data.table import config_literal, get_dataset_def
from ddep.sweep import (ABLATIONS, GRID, SUPERVISED_ARMS, Model, finetune_jobs, parse_run_name,
                        pretraining_parts, sweep_models)

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
THROUGHPUTS = BENCHMARKS / "throughput.csv"
STEP_COSTS = BENCHMARKS / "step_cost.csv"
STAGES = {"pretrain_supervised": "supervised", "pretrain_denoise": "denoise", "finetune": "finetune"}
# The breakdowns the printout gives, each a key of the jobs' rows.
GROUPS = {"rule": "per rule", "arm": "per arm (pretraining + fine-tunes)",
          "dataset": "per dataset", "model": "per model", "part": "per part of the sweep"}


@dataclass(frozen=True)
class Throughput:
    img_per_s: float
    source: str  # the measured row, and how it was scaled


def read_throughputs(path: Path = THROUGHPUTS) -> list[dict]:
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if not row["gpu"].startswith("#")]


def _model_of(row: dict) -> str:
    """A measured row's model name (its ``preset`` column: a preset or any model spec)."""
    return Model(row.get("model") or row["preset"]).name


def throughput(rows: list[dict], gpu: str, preset: str, crop: tuple[int, int], amp: str) -> Throughput:
    """Images/s for one GPU of kind ``gpu`` at ``crop``; a clear error naming what is missing."""
    preset = Model(preset).name
    same = [r for r in rows if r["gpu"] == gpu and _model_of(r) == preset and r["amp"] == amp]
    if not same:
        have = sorted({(r["gpu"], r["preset"], r["amp"]) for r in rows})
        raise ValueError(f"no measured throughput for gpu={gpu!r} model={preset!r} amp={amp!r} in "
                         f"{THROUGHPUTS}; measured: {have}. Run `python benchmarks/train_step.py "
                         f"--model <its config> --size H W --amp {amp}` on that GPU and add a row")
    pixels = crop[0] * crop[1]
    row = min(same, key=lambda r: abs(int(r["crop_h"]) * int(r["crop_w"]) - pixels))
    measured = (int(row["crop_h"]), int(row["crop_w"]))
    scale = measured[0] * measured[1] / pixels
    how = "" if measured == tuple(crop) else f", scaled from {measured[0]}x{measured[1]} by pixels"
    return Throughput(float(row["img_per_s"]) * scale,
                      f"{row['gpu']} {preset} {amp} batch {row['batch']}: {row['img_per_s']} img/s{how}")


def read_step_costs(path: Path = STEP_COSTS) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def step_cost(rows: list[dict], preset: str, crop: tuple[int, int], step: str) -> tuple[float, str]:
    """(FLOPs per image of a ``step`` / those of a fine-tune, where it was counted) for the
    preset, from the counted crop nearest in pixels (the ratio, not the FLOPs, carries over)."""
    preset = Model(preset).name
    same = [r for r in rows if _model_of(r) == preset]
    if not same:
        raise ValueError(f"no counted step cost for model {preset!r} in {STEP_COSTS}; run "
                         f"`python benchmarks/denoise_step.py --preset <its config> --size H W --csv "
                         f"{STEP_COSTS.relative_to(BENCHMARKS.parent)}`")
    pixels = crop[0] * crop[1]
    size = min({(int(r["crop_h"]), int(r["crop_w"])) for r in same},
               key=lambda s: abs(s[0] * s[1] - pixels))
    flops = {r["step"]: float(r["gflop_per_image"]) for r in same
             if (int(r["crop_h"]), int(r["crop_w"])) == size}
    ratio = flops[step] / flops["finetune"]
    return ratio, f"{step} {ratio:.3f}x a fine-tune's FLOPs ({preset} {size[0]}x{size[1]})"


def sweep_jobs(config: dict) -> list[dict]:
    """Every training job of a (schema-valid) sweep, as the workflow runs it: ``rule``,
    ``dataset``, ``arm``, ``part`` (the label-efficiency grid or the ablations) and, for
    fine-tunes, ``label_fraction``."""
    jobs = [dict(rule="finetune", dataset=j["dataset"], model=j["model"], arm=j["arm"],
                 part=j["part"], label_fraction=j["label_fraction"]) for j in finetune_jobs(config)]
    jobs += [dict(rule="pretrain_denoise", dataset=ds, model=m, arm=parse_run_name(run)[0], part=part)
             for (ds, m, run), part in pretraining_parts(config).items()]
    # the workflow trains a supervised encoder where a dataset names none (the built-in data)
    jobs += [dict(rule="pretrain_supervised", dataset=ds, model=m.name,
                  arm="/".join(SUPERVISED_ARMS) + " encoder", part=GRID)
             for ds, d in config["datasets"].items() for m in sweep_models(config)
             if not (d.get("encoder_weights") or m.encoder_weights)]
    return jobs


def estimate(jobs: list[dict], config: dict, gpu: str) -> list[dict]:
    """The jobs, each priced: ``images`` (iterations x batch x GPUs) and ``gpu_hours``, with the
    ``sources`` of its price. ``jobs`` items carry ``rule``, ``dataset`` and, for denoising,
    ``arm``; iterations and batch size come from the schedule files and the config's
    overrides."""
    table, costs = read_throughputs(), None
    schedule = functools.cache(schedule_config)  # one file parse per (dataset, stage), not per job
    amp = config.get("amp", "none")
    priced = []
    for job in jobs:
        stage = STAGES[job["rule"]]
        override = ((config.get("schedule") or {}).get(stage) or {})
        sched = schedule(job["dataset"], stage, iters=override.get("iters"),
                         batch_size=override.get("batch_size"))
        iters, batch = sched["train_cfg"]["max_iters"], sched["train_dataloader"]["batch_size"]
        crop = tuple(config["datasets"][job["dataset"]].get("crop_size")
                     or config_literal(job["dataset"], "crop_size"))
        gpus = max(1, int(((config.get("resources") or {}).get(job["rule"]) or {}).get("gpu", 1)))
        speed = throughput(table, gpu, job.get("model") or Model(config["preset"]).name, crop, amp)
        sources, img_per_s = {speed.source}, speed.img_per_s
        if job["rule"] == "pretrain_denoise":
            costs = costs if costs is not None else read_step_costs()
            ratio, source = step_cost(costs, job.get("model") or Model(config["preset"]).name,
                                      crop, job["arm"])
            img_per_s, sources = img_per_s / ratio, sources | {source}
        images = iters * batch * gpus  # the batch size is per GPU under DDP
        priced.append(dict(job, images=images, gpu_hours=images / img_per_s / 3600, sources=sources))
    return priced


def breakdown(priced: list[dict], key: str) -> list[dict]:
    """Jobs, images and GPU-hours per value of ``key`` (rule, arm, dataset, part), in the
    order first met."""
    rows: dict[str, dict] = {}
    for job in priced:
        row = rows.setdefault(job[key], {key: job[key], "jobs": 0, "images": 0, "gpu_hours": 0.0})
        row["jobs"] += 1
        row["images"] += job["images"]
        row["gpu_hours"] += job["gpu_hours"]
    return list(rows.values())


def labelled_images(config: dict) -> list[str]:
    """"dataset: 1/30 = 100, ..." for every dataset whose release size is known: the facts the
    estimate assumes. A count larger than the release's train set is an error."""
    lines = []
    for ds, d in config["datasets"].items():
        size = get_dataset_def(ds).train_images
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


def _table(rows: Iterable[dict], key: str, title: str, gpu: str) -> list[str]:
    rows = list(rows)
    lines = [f"{title:<36}{'jobs':>6}{'images':>16}{f'{gpu} GPU-hours':>18}"]
    for r in rows:
        lines.append(f"{str(r[key]):<36}{r['jobs']:>6}{r['images']:>16,}{r['gpu_hours']:>18,.0f}")
    lines.append(f"{'total':<36}{sum(r['jobs'] for r in rows):>6}"
                 f"{sum(r['images'] for r in rows):>16,}{sum(r['gpu_hours'] for r in rows):>18,.0f}")
    return lines


def format_estimate(priced: list[dict], gpu: str, config: dict | None = None) -> str:
    """The tables (per rule, arm, dataset and part) and a footer saying what each price rests
    on; ``config`` adds the labelled-image counts the fractions stand for."""
    lines: list[str] = []
    for key, title in GROUPS.items():
        if all(key in job for job in priced):  # hand-made job lists may lack some keys
            lines += _table(breakdown(priced, key), key, title, gpu) + [""]
    sources = sorted(set().union(*(j["sources"] for j in priced))) if priced else []
    lines.append("throughputs: " + "; ".join(s for s in sources if "FLOPs" not in s))
    steps = [s for s in sources if "FLOPs" in s]
    if steps:
        lines.append("denoising priced by its own step: fine-tune throughput / (" + "; ".join(steps)
                     + ", counted by benchmarks/denoise_step.py, benchmarks/step_cost.csv)")
    if config is not None:
        lines.append("assumed (no data read): " + "; ".join(labelled_images(config)))
    lines.append("training steps only (evaluation and start-up extra); linear multi-GPU scaling; "
                 f"{ABLATIONS}: the runs only the ablation blocks add")
    return "\n".join(lines)


def report(config: dict, gpu: str | None = None) -> str:
    """What `snakemake estimate` and `ddep estimate` print for a (schema-valid) config."""
    gpu = gpu or config.get("gpu_model", "H100")
    return format_estimate(estimate(sweep_jobs(config), config, gpu), gpu, config)
