"""Per model: encoder and decoder parameter counts, the denoising head's stride, and the CPU time
of one training step of each job the built-in sweep runs for it (one thread, as the workflow's
jobs run), at the built-in schedules' batch sizes and crops:

* supervised: the backbone as a classifier, batch 32 at 64 x 64 (the source images);
* DDeP: frozen backbone, decoder trained, batch 8 at 64 x 64 (the source images);
* DeP: everything trained, batch 8 at 64 x 128 (the target's images);
* fine-tune: the segmentor, batch 4 at 64 x 128.

    python benchmarks/models.py --csv benchmarks/models.csv            # config/models.yaml's models
    python benchmarks/models.py --models tiny mmseg::unet/unet-s5-d16_fcn_4xb4-160k_cityscapes-512x1024.py

``ddep estimate``-style sizing of a CPU sweep multiplies these by its jobs' iterations.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch
import yaml
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import ddep.models  # noqa: F401
from ddep.configs import denoiser_cfg, segmentor_cfg
from ddep.step_flops import fake_batch
from ddep.sweep import Model, sweep_models

from common import cpu_model, mean_step_s  # benchmarks/common.py, beside this script

FIELDS = ["model", "config", "encoder_params_M", "decoder_params_M", "aux_params_M", "noise_stride",
          "supervised_ms", "ddep_ms", "dep_ms", "finetune_ms", "cpu", "threads", "torch"]
CLASSES, SOURCE_CLASSES = 9, 24


def step_ms(model: torch.nn.Module, data: dict, warmup: int, iters: int, frozen: bool = False) -> float:
    """Mean ms of ``model.train_step`` (forward, loss, backward, AdamW), as the Runner calls it."""
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type="AdamW", lr=1e-4),
        **({"constructor": "TrainableOnlyOptimWrapperConstructor"} if frozen else {})))
    model.train()
    return round(1000 * mean_step_s(lambda: model.train_step(data, wrapper), warmup, iters), 1)


def measure(model: Model, warmup: int, iters: int) -> dict:
    seg_cfg = segmentor_cfg(model, CLASSES, (64, 128))
    seg = MODELS.build(seg_cfg)
    count = lambda prefix: sum(p.numel() for n, p in seg.named_parameters() if n.startswith(prefix))
    source = dict(seg_cfg["data_preprocessor"], size=(64, 64), test_cfg=None)
    clf = MODELS.build(dict(type="ImageClassifier", num_classes=SOURCE_CLASSES,
                            backbone=seg_cfg["backbone"], data_preprocessor=source))
    ddep = MODELS.build(dict(denoiser_cfg(model, (64, 64)), freeze_encoder=True))
    dep = MODELS.build(denoiser_cfg(model, (64, 128)))
    return dict(
        model=model.name, config=model.config,
        encoder_params_M=round(count("backbone.") / 1e6, 3),
        decoder_params_M=round((count("neck.") + count("decode_head.")) / 1e6, 3),
        aux_params_M=round(count("auxiliary_head.") / 1e6, 3), noise_stride=dep.noise_stride,
        supervised_ms=step_ms(clf, fake_batch(32, (64, 64), image_classes=SOURCE_CLASSES), warmup, iters),
        ddep_ms=step_ms(ddep, fake_batch(8, (64, 64)), warmup, iters, frozen=True),
        dep_ms=step_ms(dep, fake_batch(8, (64, 128)), warmup, iters),
        finetune_ms=step_ms(seg, fake_batch(4, (64, 128), CLASSES), warmup, iters),
        cpu=cpu_model(), threads=torch.get_num_threads(), torch=str(torch.__version__))


def main() -> None:
    register_all_modules(init_default_scope=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", help="model specs (default: config/models.yaml's)")
    ap.add_argument("--configfile", default="config/models.yaml")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--csv", type=Path, help="write the rows here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = [Model(m) for m in args.models] if args.models else \
        sweep_models(yaml.safe_load(Path(args.configfile).read_text()))
    rows = []
    print("| model | encoder (M) | decoder (M) | aux (M) | noise stride | supervised ms | "
          "DDeP ms | DeP ms | fine-tune ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in models:
        torch.manual_seed(0)
        r = measure(m, args.warmup, args.iters)
        rows.append(r)
        print(f"| {r['model']} | {r['encoder_params_M']} | {r['decoder_params_M']} | "
              f"{r['aux_params_M']} | {r['noise_stride']} | {r['supervised_ms']} | {r['ddep_ms']} | "
              f"{r['dep_ms']} | {r['finetune_ms']} |", flush=True)
    print(f"{rows[0]['cpu']}, {args.threads} thread(s), torch {rows[0]['torch']}; mean of "
          f"{args.iters} steps after {args.warmup}")
    if args.csv:
        with args.csv.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
