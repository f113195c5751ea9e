"""Training-step throughput of any model (``--model``: a TransUNet preset, an mmseg config such as
``mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py``, or a .py file) through
mmengine/mmseg, and of the TransUNet in plain PyTorch.

For the TransUNet, the plain model has the identical architecture (same timm encoder, the cascaded upsampler in
bare torch.nn) and runs the same step: forward, cross-entropy, backward, AdamW. The ratio
ours / plain is the framework overhead. FLOPs per image are counted (torch.utils.flop_counter,
forward + backward of one step), so achieved TFLOP/s and MFU follow from the step time; the
peak is the GPU's dense tensor-core peak from PEAK_TFLOPS (or --peak-tflops).

Variants (``ddep.models.transunet.apply_fast_path``'s channels_last and compile, and bf16
autocast) are measured in the same run as the baseline (the first variant), interleaved; a step
time is the median over rounds of each round's mean step. Each row also gives the largest relative
difference of its first three losses from the baseline's (same initial weights and data).

    python benchmarks/train_step.py --preset tiny --size 64 128 --batch 4 --variants base channels_last bf16
    python benchmarks/train_step.py --model mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py \
        --size 64 128 --batch 4
    python benchmarks/train_step.py --preset r50_vit_b16 --size 512 1024 --batch 4 --amp bf16 \
        --variants base channels_last channels_last+compile
"""
from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import ddep.models  # noqa: F401
import ddep.train.components  # noqa: F401  (CPUBF16OptimWrapper)
from ddep.configs import segmentor_cfg
from ddep.step_flops import counted_flops, fake_batch
from ddep.sweep import Model
from ddep.models.transunet import TransUNetEncoder, get_preset
from ddep.train.jobs import amp_optim_wrapper

from common import mean_step_s  # benchmarks/common.py, beside this script


def conv_bn_relu(i: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))


class PlainTransUNet(nn.Module):
    """Reference TransUNet without mmengine/mmseg (same layers, same shapes)."""

    def __init__(self, preset: str, num_classes: int, img_size) -> None:
        super().__init__()
        enc = get_preset(preset)
        dec = segmentor_cfg(preset, num_classes, img_size)["decode_head"]  # the preset's widths
        self.encoder = TransUNetEncoder(preset, img_size)
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


def parse_variant(variant: str, amp: str) -> tuple[dict, str]:
    """(fast-path options, precision): ``base`` -> ({}, amp);
    ``channels_last+compile+bf16`` -> ({channels_last: True, compile: True}, "bf16")."""
    keys = [] if variant == "base" else variant.split("+")
    unknown = set(keys) - {"channels_last", "compile", "bf16"}
    if unknown:
        raise SystemExit(f"unknown option(s) {sorted(unknown)} in variant {variant!r}: use base "
                         f"or channels_last, compile, bf16 joined by '+'")
    return {k: True for k in keys if k != "bf16"}, "bf16" if "bf16" in keys else amp


def main() -> None:
    register_all_modules(init_default_scope=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", "--preset", dest="model", default="tiny",
                    help="a TransUNet preset (tiny, r50_vit_b16), an mmseg config or a .py file")
    ap.add_argument("--size", type=int, nargs=2, default=(128, 128), metavar=("H", "W"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--classes", type=int, default=19)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--amp", choices=("none", "bf16"), default="none", help="every variant's precision")
    ap.add_argument("--variants", nargs="+", default=["base"],
                    help="variants measured in the same run, the first one the baseline: base, "
                         "or options joined by '+': channels_last, compile, bf16 (autocast)")
    ap.add_argument("--rounds", type=int, default=3, help="alternate all models this many times")
    ap.add_argument("--overhead", choices=("all", "first"), default="all",
                    help="measure the plain-PyTorch model for every variant, or for the first only "
                         "(saves its compilation where a variant compiles)")
    ap.add_argument("--peak-tflops", type=float,
                    help="the device's peak TFLOP/s for MFU (default: PEAK_TFLOPS by GPU name)")
    args = ap.parse_args()
    for variant in args.variants:  # a typo stops here, before any model is built
        parse_variant(variant, args.amp)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    h, w = args.size
    n = args.batch

    data = fake_batch(n, (h, w), args.classes)
    imgs, mean = data["inputs"], torch.tensor([127.5] * 3, device=device).view(1, 3, 1, 1)
    labels = torch.stack([s.gt_sem_seg.data[0] for s in data["data_samples"]]).to(device)

    # the plain twin reimplements the TransUNet only: other models have no overhead column
    backbone = segmentor_cfg(args.model, args.classes, (h, w))["backbone"]
    twin = backbone["type"] == "TransUNetEncoder"

    def ours_step_of(variant: str):
        torch.manual_seed(0)  # every variant starts from the same weights
        cfg = segmentor_cfg(args.model, args.classes, (h, w))
        options, amp = parse_variant(variant, args.amp)
        model = MODELS.build(dict(cfg, fast_path=options)).to(device).train()
        wrapper_cfg = dict(optimizer=dict(type="AdamW", lr=1e-4))
        if amp != "none":
            wrapper_cfg.update(amp_optim_wrapper(amp))  # as the jobs do
        wrapper = build_optim_wrapper(model, wrapper_cfg)
        return model, lambda: model.train_step(data, wrapper)["loss"].detach()

    def plain_step_of(variant: str):
        torch.manual_seed(0)
        model = PlainTransUNet(backbone["preset"], args.classes, (h, w)).to(device).train()
        options, amp = parse_variant(variant, args.amp)
        autocast = dict(device_type=device, dtype=torch.bfloat16, enabled=amp == "bf16")
        if options.get("channels_last"):
            model.to(memory_format=torch.channels_last)
        if options.get("compile"):
            model.compile()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step() -> None:
            x = (torch.stack(imgs).to(device).flip(1).float() - mean) / mean  # the same preprocessing
            with torch.autocast(**autocast):
                loss = F.cross_entropy(model(x), labels, ignore_index=255)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return model, step

    ours, plain, losses, peak_mem = {}, {}, {}, {}
    for variant in args.variants:
        model, ours[variant] = ours_step_of(variant)
        n_ours = sum(p.numel() for p in model.parameters())
        if twin and (args.overhead == "all" or variant == args.variants[0]):
            plain_model, plain[variant] = plain_step_of(variant)
            assert n_ours == sum(p.numel() for p in plain_model.parameters()), "architectures differ"
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        losses[variant] = [float(ours[variant]()) for _ in range(3)]  # also compiles
        peak_mem[variant] = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    flops_per_image = counted_flops(ours[args.variants[0]]) / n

    t_ours = {v: [] for v in args.variants}
    t_plain = {v: [] for v in args.variants}
    for _ in range(args.rounds):  # interleave so drift hits every model equally
        for v in args.variants:
            t_ours[v].append(mean_step_s(ours[v], args.warmup, args.iters))
            if v in plain:
                t_plain[v].append(mean_step_s(plain[v], args.warmup, args.iters))

    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; model {args.model}, {h}x{w}, batch {n}, {n_ours / 1e6:.2f}M "
          f"parameters; counted FLOPs per training image (forward + backward): "
          f"{flops_per_image / 1e9:.1f} GFLOP; MFU against the precision's peak "
          f"({'--peak-tflops' if args.peak_tflops else 'PEAK_TFLOPS'})")
    print("| device | model | size | batch | precision | options | ms/step | img/s | TFLOP/s | MFU "
          "| peak memory | overhead (ours / plain) | vs baseline | loss diff (3 steps) |")
    print("|---" * 14 + "|")
    base = args.variants[0]
    for v in args.variants:
        mo = statistics.median(t_ours[v])
        overhead = f"{mo / statistics.median(t_plain[v]):.3f}" if v in plain else "–"
        tflops = flops_per_image * n / mo / 1e12
        diff = max(abs(a - b) / abs(b) for a, b in zip(losses[v], losses[base]))
        mem = f"{peak_mem[v]:.1f} GiB" if peak_mem[v] is not None else "n/a"
        amp = parse_variant(v, args.amp)[1]
        peak = args.peak_tflops or (peak_tflops(name, amp) if device == "cuda" else None)
        mfu = f"{100 * tflops / peak:.1f}% of {peak:g}" if peak else "n/a"
        print(f"| {name} | {Model(args.model).name} | {h}x{w} | {n} | {amp} | {v} | {mo * 1000:.1f} | "
              f"{n / mo:.1f} | {tflops:.3g} | {mfu} | {mem} | {overhead} | "
              f"{mo / statistics.median(t_ours[base]):.3f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
