"""Training-step throughput of the TransUNet presets, through mmengine/mmseg and in plain PyTorch.

The plain model has the identical architecture (same timm encoder, the cascaded upsampler in
bare torch.nn) and runs the same step: forward, cross-entropy, backward, AdamW. The ratio
ours / plain is the framework overhead. FLOPs per image are counted (torch.utils.flop_counter,
forward + backward of one step), so achieved TFLOP/s and MFU follow from the step time; the
peak is the GPU's dense tensor-core peak from PEAK_TFLOPS (or --peak-tflops).

    python benchmarks/train_step.py --preset tiny --size 128 128 --batch 8
    python benchmarks/train_step.py --preset r50_vit_b16 --size 512 1024 --batch 2 --amp bf16
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

import ddep.models  # noqa: F401
from ddep.configs import segmentor_cfg
from ddep.models.transunet import TransUNetEncoder, get_preset


def conv_bn_relu(i: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))


class PlainTransUNet(nn.Module):
    """Reference TransUNet without mmengine/mmseg (same layers, same shapes)."""

    def __init__(self, preset: str, num_classes: int, img_size) -> None:
        super().__init__()
        arch = get_preset(preset)
        self.encoder = TransUNetEncoder(preset, img_size)
        enc, dec = arch["encoder"], arch["decoder"]
        skips = (enc["resnet_channels"][1], enc["resnet_channels"][0], enc["stem_channels"], 0)
        self.conv_more = conv_bn_relu(enc["embed_dim"], dec["head_channels"])
        ins = (dec["head_channels"], *dec["decoder_channels"][:-1])
        self.blocks = nn.ModuleList(nn.Sequential(conv_bn_relu(i + s, o), conv_bn_relu(o, o))
                                    for i, s, o in zip(ins, skips, dec["decoder_channels"]))
        self.proj = nn.Conv2d(dec["decoder_channels"][-1], num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s2, s4, s8, t = self.encoder(x)
        x = self.conv_more(t)
        for block, skip in zip(self.blocks, (s8, s4, s2, None)):
            size = skip.shape[-2:] if skip is not None else tuple(2 * s for s in x.shape[-2:])
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1) if skip is not None else x)
        return self.proj(x)


# Peak TFLOP/s by GPU name (vendors' data sheets): bf16 dense tensor-core; "none" = plain FP32
# (PyTorch's default matmul precision; cuDNN convolutions may use TF32 and beat it).
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.4, "none": 66.9},
    "H100": {"bf16": 989.4, "none": 66.9},   # SXM; PCIe: 756 / 51
    "A100": {"bf16": 312.0, "none": 19.5},
    "L40S": {"bf16": 362.1, "none": 91.6},
}


def peak_tflops(device_name: str, amp: str) -> float | None:
    for key, peaks in PEAK_TFLOPS.items():
        if key in device_name:
            return peaks[amp]
    return None


def counted_flops(step) -> int:
    """FLOPs of one call of ``step`` (forward + backward), counted by PyTorch's flop counter."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def timed(step, device: str, warmup: int, iters: int) -> list[float]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    register_all_modules(init_default_scope=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--size", type=int, nargs=2, default=(128, 128), metavar=("H", "W"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--classes", type=int, default=19)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--amp", choices=("none", "bf16"), default="none")
    ap.add_argument("--rounds", type=int, default=3, help="alternate ours/plain this many times")
    ap.add_argument("--peak-tflops", type=float,
                    help="the device's peak TFLOP/s for MFU (default: PEAK_TFLOPS by GPU name)")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    h, w = args.size
    n = args.batch

    ours = MODELS.build(segmentor_cfg(args.preset, args.classes, (h, w))).to(device).train()
    wrapper_cfg = dict(optimizer=dict(type="AdamW", lr=1e-4))
    if args.amp == "bf16":
        wrapper_cfg.update(type="AmpOptimWrapper", dtype="bfloat16")
    wrapper = build_optim_wrapper(ours, wrapper_cfg)
    imgs = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for _ in range(n)]
    samples = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, args.classes, (1, h, w)))
        samples.append(s)
    data = dict(inputs=imgs, data_samples=samples)

    plain = PlainTransUNet(args.preset, args.classes, (h, w)).to(device).train()
    n_ours = sum(p.numel() for p in ours.parameters())
    n_plain = sum(p.numel() for p in plain.parameters())
    assert n_ours == n_plain, f"architectures differ: {n_ours} vs {n_plain} parameters"
    opt = torch.optim.AdamW(plain.parameters(), lr=1e-4)
    mean = torch.tensor([127.5] * 3, device=device).view(1, 3, 1, 1)
    labels = torch.stack([s.gt_sem_seg.data[0] for s in samples]).to(device)

    def plain_step() -> None:
        x = (torch.stack(imgs).to(device).flip(1).float() - mean) / mean  # the same preprocessing
        with torch.autocast(device, dtype=torch.bfloat16, enabled=args.amp == "bf16"):
            loss = F.cross_entropy(plain(x), labels, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def ours_step() -> None:
        ours.train_step(data, wrapper)

    flops_per_image = counted_flops(ours_step) / n
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t_ours, t_plain = [], []
    for _ in range(args.rounds):  # interleave so drift hits both equally
        t_ours += timed(ours_step, device, args.warmup, args.iters)
        t_plain += timed(plain_step, device, args.warmup, args.iters)
    mo, mp = statistics.median(t_ours), statistics.median(t_plain)
    print(f"device={device} ({torch.cuda.get_device_name() if device == 'cuda' else torch.get_num_threads()} "
          f"{'' if device == 'cuda' else 'threads'}) preset={args.preset} size={h}x{w} batch={n} amp={args.amp} "
          f"params={n_ours / 1e6:.2f}M")
    peak = args.peak_tflops or (peak_tflops(torch.cuda.get_device_name(), args.amp)
                                if device == "cuda" else None)
    print(f"counted FLOPs per training image (forward + backward): {flops_per_image / 1e9:.1f} GFLOP")
    for name, t in (("ours  (mmengine train_step)", mo), ("plain (PyTorch loop)       ", mp)):
        tflops = flops_per_image * n / t / 1e12
        mfu = f"MFU {100 * tflops / peak:5.1f}% of {peak:g}" if peak else "MFU n/a (pass --peak-tflops)"
        print(f"{name}: {t * 1000:8.1f} ms/step  {n / t:8.1f} img/s  {tflops:8.3f} TFLOP/s  {mfu}")
    print(f"framework overhead ratio ours/plain = {mo / mp:.3f}")
    if device == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
