"""ddep's r50_vit_b16 TransUNet against the official TransUNet R50-ViT-B_16 (Chen et al. 2021),
the same training step on the same machine in one run: forward, cross-entropy, backward, SGD.

The official code is not part of ddep: check it out anywhere (it needs `pip install
ml_collections scipy`) and pass its folder.

    git clone https://github.com/Beckschen/TransUNet ../TransUNet
    python benchmarks/vs_official.py --official ../TransUNet --threads 2 [--profile]

``--profile`` then profiles one more step of each and splits its time into matrix products,
convolutions and attention (the dense work, the same FLOPs in both models), normalization and
the rest; ddep's dense time over the official step's whole time is the ratio no overhead
removal can get below at the same precision.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys

import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import ddep.models  # noqa: F401  (registers the modules)
import ddep.train.components  # noqa: F401  (CPUBF16OptimWrapper)
from ddep.configs import segmentor_cfg
from ddep.step_flops import fake_batch

from common import mean_step_s  # benchmarks/common.py, beside this script


def official_model(folder: str, size: int, classes: int) -> torch.nn.Module:
    """The official model as its train.py builds it for R50-ViT-B_16."""
    sys.path.insert(0, folder)
    from networks.vit_seg_modeling import CONFIGS, VisionTransformer
    config = CONFIGS["R50-ViT-B_16"]
    config.n_classes, config.n_skip = classes, 3
    config.patches.grid = (size // 16, size // 16)
    return VisionTransformer(config, img_size=size, num_classes=classes)


DENSE = re.compile(r"mm|conv|scaled_dot_product|linear")  # GEMM-backed ops, forward and backward
NORM = re.compile(r"norm")


def time_split(step) -> dict[str, float]:
    """Seconds of one ``step`` in dense ops, normalization and the rest (operators' own time)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    split = dict(dense=0.0, norm=0.0, other=0.0)
    for event in prof.key_averages():
        kind = "dense" if DENSE.search(event.key) else "norm" if NORM.search(event.key) else "other"
        split[kind] += event.self_cpu_time_total / 1e6
    return split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="folder of a TransUNet checkout")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternate the two models this often")
    ap.add_argument("--profile", action="store_true", help="then split one step of each by op kind")
    ap.add_argument("--amp", choices=("none", "bf16"), default="none",
                    help="bf16 autocast for both models (ddep's CPUBF16OptimWrapper, and "
                         "torch.autocast around the official forward)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    register_all_modules(init_default_scope=True)
    n, s = args.batch, args.size

    ours = MODELS.build(ConfigDict(segmentor_cfg("r50_vit_b16", args.classes, (s, s)))).train()
    wrapper = dict(type="CPUBF16OptimWrapper") if args.amp == "bf16" else {}
    ours_opt = build_optim_wrapper(ours, dict(optimizer=dict(type="SGD", lr=0.01, momentum=0.9),
                                              **wrapper))
    data = fake_batch(n, (s, s), args.classes)

    official = official_model(args.official, s, args.classes).train()
    official_opt = torch.optim.SGD(official.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(n, 3, s, s)
    y = torch.stack([smp.gt_sem_seg.data[0] for smp in data["data_samples"]])

    def official_step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.amp == "bf16"):
            loss = F.cross_entropy(official(x), y)
        official_opt.zero_grad(set_to_none=True)
        loss.backward()
        official_opt.step()

    def ours_step() -> None:
        ours.train_step(data, ours_opt)

    t_ours, t_official = [], []  # each round's mean step
    for _ in range(args.rounds):  # interleaved, so that drift on a shared machine hits both
        t_ours.append(mean_step_s(ours_step, args.warmup, args.iters))
        t_official.append(mean_step_s(official_step, args.warmup, args.iters))
    mo, mf = statistics.median(t_ours), statistics.median(t_official)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    print(f"cpu threads={args.threads} size={s}x{s} batch={n} classes={args.classes} amp={args.amp} "
          f"steps={args.rounds * args.iters} per model (median of {args.rounds} rounds' means)")
    print(f"ddep r50_vit_b16 (mmengine train_step): {mo:.3f} s/step  {count(ours):,} parameters")
    print(f"official R50-ViT-B_16 (plain loop)     : {mf:.3f} s/step  {count(official):,} parameters")
    print(f"ratio ddep / official = {mo / mf:.3f}")
    if args.profile:
        split = {"ddep": time_split(ours_step), "official": time_split(official_step)}
        print("| model | dense (mm, conv, attention) | normalization | other | profiled step |")
        print("|---|---|---|---|---|")
        for name, parts in split.items():
            total = sum(parts.values())
            print(f"| {name} | " + " | ".join(f"{parts[k]:.3f} s ({100 * parts[k] / total:.0f}%)"
                                               for k in ("dense", "norm", "other")) + f" | {total:.3f} s |")
        floor = split["ddep"]["dense"] / sum(split["official"].values())
        print(f"ddep's dense time / the official step = {floor:.3f} (the ratio without any other cost)")


if __name__ == "__main__":
    main()
