"""Data-loading throughput of a dataset's training pipeline (the one the fine-tune job runs:
decode, random resize, crop, flip, photometric jitter, label checks), and the workers a GPU
needs to be fed.

One DataLoader worker runs the pipeline in one process with one thread, so the pipeline timed
in this process with one thread is the rate of one worker; a DataLoader with the given worker
counts then shows how that scales on this machine (up to its cores). The GPU's rate is the
measured training throughput in ``benchmarks/throughput.csv`` (``ddep.estimate``) for the preset,
crop and precision, so workers needed per GPU = GPU img/s / one worker's img/s, rounded up.

    python benchmarks/data_loader.py --fake 12                        # generated 2048x1024 Cityscapes
    python benchmarks/data_loader.py --data-root data/cityscapes     # a real copy
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import tempfile
from pathlib import Path

import cv2
import torch
from mmengine.dataset import InfiniteSampler, pseudo_collate
from mmseg.registry import DATASETS
from mmseg.utils import register_all_modules
from torch.utils.data import DataLoader

import ddep.data.checks  # noqa: F401  (registers the checking loaders)
from ddep.configs import finetune_config
from ddep.data.checks import checked_pipeline
from ddep.estimate import read_throughputs, throughput

from common import mean_step_s  # benchmarks/common.py, beside this script

REPO = Path(__file__).resolve().parent.parent


def fake_cityscapes(root: Path, n: int) -> None:
    """``n`` training images in Cityscapes' layout, size and label values (the tests' fake data),
    with pixel noise so each PNG is about as large as a real one (2.2 MiB: leftImg8bit_trainvaltest
    is 11 GB for 5,000 images)."""
    sys.path.insert(0, str(REPO / "tests"))
    from fake_data import make_cityscapes
    make_cityscapes(root, n_train=n, n_val=1, grain=1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="cityscapes", help="a dataset file of ddep/configs")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-root", type=Path, help="the dataset, as its dataset file expects")
    where.add_argument("--fake", type=int, metavar="N", help="generate N Cityscapes images first")
    ap.add_argument("--samples", type=int, default=24, help="pipeline runs timed in this process")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batches", type=int, default=6, help="batches of 4 timed per DataLoader")
    ap.add_argument("--gpu", default="H100")
    ap.add_argument("--preset", default="r50_vit_b16")
    ap.add_argument("--amp", default="bf16")
    args = ap.parse_args()
    register_all_modules(init_default_scope=True)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root
        if args.fake:
            if args.dataset != "cityscapes":
                raise SystemExit("--fake makes Cityscapes only: pass --data-root for other datasets")
            root = Path(tmp) / "cityscapes"
            fake_cityscapes(root, args.fake)
        cfg = finetune_config(args.dataset, args.preset, root)
        data = cfg.train_dataloader.dataset
        data.pipeline = checked_pipeline(data.pipeline, cfg.num_classes)
        dataset = DATASETS.build(data)
        first = Path(dataset.get_data_info(0)["img_path"])
        h, w = cv2.imread(str(first)).shape[:2]
        print(f"{args.dataset}: {len(dataset)} training images at {root}, e.g. {w}x{h}, "
              f"{first.stat().st_size / 2**20:.1f} MiB ({first.suffix}); crop {tuple(cfg.crop_size)}")

        images = itertools.cycle(range(len(dataset)))  # warm-up: imports, first decode
        per_worker = 1 / mean_step_s(lambda: dataset[next(images)], 1, args.samples)
        print(f"one worker (this process, 1 thread): {1000 / per_worker:.0f} ms per image, "
              f"{per_worker:.1f} img/s (mean of {args.samples})")

        for workers in args.workers:
            loader = DataLoader(dataset, batch_size=4, sampler=InfiniteSampler(dataset, seed=0),
                                num_workers=workers, collate_fn=pseudo_collate)
            batches = iter(loader)
            rate = 4 / mean_step_s(lambda: next(batches), 1, args.batches)  # warm-up: workers started, primed
            print(f"DataLoader, {workers} worker(s): {rate:.1f} img/s ({rate / workers:.1f} per "
                  f"worker; {len(os.sched_getaffinity(0))} cores here)")
            del batches, loader

    crop = tuple(cfg.crop_size)
    gpu = throughput(read_throughputs(), args.gpu, args.preset, crop, args.amp)
    print(f"{args.gpu} trains {gpu.img_per_s:.1f} img/s ({gpu.source}): "
          f"{math.ceil(gpu.img_per_s / per_worker)} workers per GPU at one worker's rate")


if __name__ == "__main__":
    main()
