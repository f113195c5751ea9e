"""GPU-hours of a sweep before it is submitted: jobs x iterations x batch size = training images,
divided by a measured throughput (``benchmarks/throughput.csv``) for the GPU, preset, crop and
precision. `snakemake estimate --configfile config/paper.yaml --config gpu=H100` prints it.

Assumptions, said in the printout: training steps only (evaluation and start-up are extra);
denoising pretraining is priced like fine-tuning (DDeP's frozen encoder makes it cheaper, so
this errs high); several GPUs per job scale linearly; a crop that was not measured is priced
by pixel count from the nearest measured crop of the same GPU, preset and precision.
"""
from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

from ddep.configs import schedule_config
from ddep.data.table import config_literal

THROUGHPUTS = Path(__file__).resolve().parent.parent / "benchmarks" / "throughput.csv"
STAGES = {"pretrain_supervised": "supervised", "pretrain_denoise": "denoise", "finetune": "finetune"}


@dataclass(frozen=True)
class Throughput:
    img_per_s: float
    source: str  # the measured row, and how it was scaled


def read_throughputs(path: Path = THROUGHPUTS) -> list[dict]:
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if not row["gpu"].startswith("#")]


def throughput(rows: list[dict], gpu: str, preset: str, crop: tuple[int, int], amp: str) -> Throughput:
    """Images/s for one GPU of kind ``gpu`` at ``crop``; a clear error naming what is missing."""
    same = [r for r in rows if r["gpu"] == gpu and r["preset"] == preset and r["amp"] == amp]
    if not same:
        have = sorted({(r["gpu"], r["preset"], r["amp"]) for r in rows})
        raise ValueError(f"no measured throughput for gpu={gpu!r} preset={preset!r} amp={amp!r} in "
                         f"{THROUGHPUTS}; measured: {have}. Run `python benchmarks/train_step.py "
                         f"--preset {preset} --size H W --amp {amp}` on that GPU and add a row")
    pixels = crop[0] * crop[1]
    row = min(same, key=lambda r: abs(int(r["crop_h"]) * int(r["crop_w"]) - pixels))
    measured = (int(row["crop_h"]), int(row["crop_w"]))
    scale = measured[0] * measured[1] / pixels
    how = "" if measured == tuple(crop) else f", scaled from {measured[0]}x{measured[1]} by pixels"
    return Throughput(float(row["img_per_s"]) * scale,
                      f"{row['gpu']} {preset} {amp} batch {row['batch']}: {row['img_per_s']} img/s{how}")


def estimate(jobs: list[dict], config: dict, gpu: str) -> list[dict]:
    """One row per rule: jobs, training images and GPU-hours. ``jobs`` items carry ``rule`` and
    ``dataset``; iterations and batch size come from the schedule files and the config's
    overrides."""
    rows, table = {}, read_throughputs()
    schedule = functools.cache(schedule_config)  # one file parse per (dataset, stage), not per job
    amp = config.get("amp", "none")
    for job in jobs:
        stage = STAGES[job["rule"]]
        override = ((config.get("schedule") or {}).get(stage) or {})
        sched = schedule(job["dataset"], stage, iters=override.get("iters"),
                         batch_size=override.get("batch_size"))
        iters, batch = sched["train_cfg"]["max_iters"], sched["train_dataloader"]["batch_size"]
        crop = tuple(config["datasets"][job["dataset"]].get("crop_size")
                     or config_literal(job["dataset"], "crop_size"))
        gpus = max(1, int(((config.get("resources") or {}).get(job["rule"]) or {}).get("gpu", 1)))
        speed = throughput(table, gpu, config["preset"], crop, amp)
        images = iters * batch * gpus  # the batch size is per GPU under DDP
        row = rows.setdefault(job["rule"], dict(rule=job["rule"], jobs=0, images=0, gpu_hours=0.0,
                                                sources=set()))
        row["jobs"] += 1
        row["images"] += images
        row["gpu_hours"] += images / speed.img_per_s / 3600
        row["sources"].add(speed.source)
    return list(rows.values())


def format_estimate(rows: list[dict], gpu: str) -> str:
    lines = [f"{'rule':<22}{'jobs':>6}{'images':>16}{f'{gpu} GPU-hours':>18}"]
    for r in rows:
        lines.append(f"{r['rule']:<22}{r['jobs']:>6}{r['images']:>16,}{r['gpu_hours']:>18,.0f}")
    total = sum(r["gpu_hours"] for r in rows)
    lines.append(f"{'total':<22}{sum(r['jobs'] for r in rows):>6}"
                 f"{sum(r['images'] for r in rows):>16,}{total:>18,.0f}")
    lines.append("throughputs: " + "; ".join(sorted(set().union(*(r["sources"] for r in rows)))))
    lines.append("training steps only (evaluation and start-up extra); denoising priced like "
                 "fine-tuning (DDeP is cheaper); linear multi-GPU scaling")
    return "\n".join(lines)
