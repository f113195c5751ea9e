"""The paper's model at the paper's crop on this machine's CPU: ``r50_vit_b16`` fine-tuned on one
Cityscapes crop of 512x1024, then one real-sized 2048x1024 Cityscapes image evaluated as the
fine-tune job evaluates it (mmseg's val pipeline and sliding windows of the crop, stride 2/3).
Prints wall times and the process's peak resident memory; not a test (minutes on a CPU).

The image is a generated one in Cityscapes' layout, size and label values (the tests' fake
data, with pixel grain so the PNG is as large as a real one); speed does not depend on content.

    python benchmarks/paper_crop.py                     # batch 1, two training steps, one image
    python benchmarks/paper_crop.py --steps 1 --amp bf16
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from mmengine.config import ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmseg.registry import DATASETS, MODELS
from mmseg.utils import register_all_modules

import ddep.data  # noqa: F401  (registers the datasets and the checking loaders)
import ddep.models  # noqa: F401
import ddep.train.components  # noqa: F401  (CPUBF16OptimWrapper)
from ddep.configs import finetune_config
from ddep.train.jobs import amp_optim_wrapper

from common import cpu_model  # benchmarks/common.py, beside this script

REPO = Path(__file__).resolve().parent.parent


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def main() -> None:
    register_all_modules(init_default_scope=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="r50_vit_b16")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=2, help="training steps, each timed")
    ap.add_argument("--amp", choices=("none", "bf16"), default="none")
    args = ap.parse_args()
    t_start = time.perf_counter()
    sys.path.insert(0, str(REPO / "tests"))
    from fake_data import make_cityscapes

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "cityscapes"
        make_cityscapes(root, n_train=args.batch, n_val=1, grain=1.0)
        cfg = finetune_config("cityscapes", args.preset, root)  # crop 512x1024, slide 341x683
        train = DATASETS.build(cfg.train_dataloader.dataset)
        val = DATASETS.build(cfg.val_dataloader.dataset)
        batch = pseudo_collate([train[i % len(train)] for i in range(args.batch)])
        [image] = [val[0]]

        torch.manual_seed(0)
        model = MODELS.build(ConfigDict(cfg.model))
        model.init_weights()
        model.train()
        wrapper_cfg = dict(optimizer=dict(type="AdamW", lr=1e-4, weight_decay=0.01))
        if args.amp != "none":
            wrapper_cfg.update(amp_optim_wrapper(args.amp))  # as the jobs do
        wrapper = build_optim_wrapper(model, wrapper_cfg)
        n_params = sum(p.numel() for p in model.parameters())
        built = time.perf_counter() - t_start

        step_times, losses = [], []
        for _ in range(args.steps):
            t = time.perf_counter()
            losses.append(float(model.train_step(batch, wrapper)["decode.loss_ce"]))
            step_times.append(time.perf_counter() - t)
        rss_train = peak_rss_gib()

        model.eval()
        t = time.perf_counter()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.amp == "bf16"):
            [out] = model.test_step(pseudo_collate([image]))
        t_eval = time.perf_counter() - t
        h, w = out.metainfo["ori_shape"]
        windows = model.test_cfg
    total = time.perf_counter() - t_start

    print(f"{cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}; preset "
          f"{args.preset} ({n_params / 1e6:.1f}M parameters at {cfg.crop_size[0]}x{cfg.crop_size[1]}), "
          f"precision {args.amp}")
    print(f"set-up (data, model, optimizer): {built:.1f} s")
    for i, (s, loss) in enumerate(zip(step_times, losses), 1):
        print(f"training step {i} (batch {args.batch}, crop {cfg.crop_size[0]}x{cfg.crop_size[1]}, "
              f"forward + backward + AdamW): {s:.1f} s (loss {loss:.3f})")
    print(f"peak RSS after training: {rss_train:.2f} GiB")
    print(f"evaluation of one {w}x{h} image (sliding window {windows['crop_size']}, stride "
          f"{windows['stride']}): {t_eval:.1f} s, prediction {tuple(out.pred_sem_seg.data.shape[-2:])}")
    print(f"peak RSS: {peak_rss_gib():.2f} GiB; wall time in all: {total:.1f} s")


if __name__ == "__main__":
    main()
