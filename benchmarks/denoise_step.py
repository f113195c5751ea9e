"""What a denoising-pretraining step costs next to a fine-tuning step, in one run: DeP (the whole
network trains) and DDeP (the encoder is frozen: it runs forward only, with no gradient, and
has no optimizer state) against the segmentation fine-tune of the same preset and crop.

Each step is the job's own: ``model.train_step`` of the model the jobs build
(``ddep.configs.segmentor_cfg`` / ``denoiser_cfg``) with AdamW through mmengine's optimizer
wrapper (DDeP's through ``TrainableOnlyOptimWrapperConstructor``, as the pretraining config
has it). FLOPs of one step are counted by ``torch.utils.flop_counter.FlopCounterMode``
(forward + backward); time is the median over interleaved rounds of each round's mean step.

``--csv benchmarks/step_cost.csv`` writes the counted FLOPs there (rows of the same preset and
crop are replaced): ``ddep.estimate`` prices each denoising arm's pretraining as its FLOPs per
image over the fine-tune's, times the fine-tune's measured GPU throughput.

    python benchmarks/denoise_step.py --preset r50_vit_b16 --size 224 224 --csv benchmarks/step_cost.csv
    python benchmarks/denoise_step.py --preset r50_vit_b16 --size 512 1024 --iters 1 --rounds 2 \
        --csv benchmarks/step_cost.csv
"""
from __future__ import annotations

import argparse
import csv
import datetime
import statistics
from pathlib import Path

import torch

from ddep.step_flops import STEPS, build_step, counted_flops  # the estimate's counter

from common import mean_step_s  # benchmarks/common.py, beside this script

FIELDS = ["preset", "crop_h", "crop_w", "step", "gflop_per_image", "trainable_params",
          "cpu_s_per_image", "measured"]


def write_rows(path: Path, rows: list[dict]) -> None:
    """Replace the rows of the same (preset, crop) in ``path`` and keep the others."""
    keep = []
    if path.is_file():
        with open(path, newline="") as f:
            keep = [r for r in csv.DictReader(f)
                    if (r["preset"], r["crop_h"], r["crop_w"]) !=
                    (rows[0]["preset"], rows[0]["crop_h"], rows[0]["crop_w"])]
    with open(path, "w", newline="") as f:
        out = csv.DictWriter(f, FIELDS)
        out.writeheader()
        out.writerows(keep + rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny",
                    help="a TransUNet preset (tiny, r50_vit_b16), an mmseg config or a .py file")
    ap.add_argument("--size", type=int, nargs=2, default=(64, 128), metavar=("H", "W"))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--classes", type=int, default=19, help="the fine-tune's classes (Cityscapes: 19)")
    ap.add_argument("--iters", type=int, default=3, help="timed steps per round")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2, help="alternate the three steps this many times")
    ap.add_argument("--csv", type=Path, help="write the counted FLOPs to this file (step_cost.csv)")
    args = ap.parse_args()
    size, n = tuple(args.size), args.batch

    steps, params, flops = {}, {}, {}
    for step in STEPS:
        model, steps[step] = build_step(step, args.preset, size, n, args.classes)
        params[step] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        steps[step]()  # first step outside the counter (lazy initialisation)
        flops[step] = counted_flops(steps[step]) / n
    times = {s: [] for s in STEPS}
    for _ in range(args.rounds):  # interleaved, so a busy machine slows every step alike
        for step in STEPS:
            times[step].append(mean_step_s(steps[step], args.warmup, args.iters))

    when = datetime.date.today().isoformat()
    where = f"benchmarks/denoise_step.py, CPU {torch.get_num_threads()} threads, torch {torch.__version__}, {when}"
    print(f"preset {args.preset}, {size[0]}x{size[1]}, batch {n}, CPU with "
          f"{torch.get_num_threads()} threads; FLOPs counted by torch.utils.flop_counter "
          f"(forward + backward of one step), time: median of {args.rounds} rounds' mean of {args.iters} steps")
    print("| step | trainable parameters | GFLOP per image | vs fine-tune (FLOPs) | s per step "
          "| vs fine-tune (time) |")
    print("|---" * 6 + "|")
    med = {s: statistics.median(times[s]) for s in STEPS}
    rows = []
    for s in STEPS:
        print(f"| {s} | {params[s] / 1e6:.1f}M | {flops[s] / 1e9:.1f} | "
              f"{flops[s] / flops['finetune']:.3f} | {med[s]:.2f} | {med[s] / med['finetune']:.3f} |")
        rows.append(dict(preset=args.preset, crop_h=size[0], crop_w=size[1], step=s,
                         gflop_per_image=f"{flops[s] / 1e9:.5g}", trainable_params=params[s],
                         cpu_s_per_image=f"{med[s] / n:.3f}", measured=where))
    print(f"DDeP / DeP: {flops['ddep'] / flops['dep']:.3f} of the FLOPs, "
          f"{med['ddep'] / med['dep']:.3f} of the time")
    if args.csv:
        write_rows(args.csv, rows)
        print(f"wrote {len(rows)} rows to {args.csv}")


if __name__ == "__main__":
    main()
