"""Which mmseg models ddep can pretrain and fine-tune: for each config, build its denoiser (the
noise head's stride measured), run one DeP training step at 64 x 128, save it, and start the
segmentor from it (the transfer report). Prints one line per model: ok, or the one message.

    python benchmarks/try_models.py mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py ...
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

import ddep.models  # noqa: F401
from ddep.configs import denoiser_cfg, segmentor_cfg
from ddep.models import export_weights, transfer_weights


def try_model(spec: str, size: tuple[int, int] = (64, 128)) -> str:
    torch.manual_seed(0)
    denoiser = MODELS.build(denoiser_cfg(spec, size))
    x = torch.randint(0, 256, (2, 3, *size), dtype=torch.uint8)
    samples = [SegDataSample(metainfo=dict(img_shape=size, ori_shape=size)) for _ in x]
    wrapper = build_optim_wrapper(denoiser, dict(optimizer=dict(type="AdamW", lr=1e-4)))
    loss = denoiser.train_step(dict(inputs=list(x), data_samples=samples), wrapper)["loss"]
    with tempfile.TemporaryDirectory() as tmp:
        export_weights(denoiser, Path(tmp) / "dep.pth")
        seg = MODELS.build(segmentor_cfg(spec, 9, size))
        report = transfer_weights(seg, Path(tmp) / "dep.pth", spec)
    return f"ok: noise stride {denoiser.noise_stride}, DeP loss {float(loss):.3f}; {report.summary()}"


def main() -> None:
    register_all_modules(init_default_scope=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for spec in args.models:
        try:
            result = try_model(spec)
        except Exception as e:  # noqa: BLE001  (the point is to report any failure in one line)
            result = f"FAILS: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
        print(f"{spec}\n    {result}", flush=True)


if __name__ == "__main__":
    main()
