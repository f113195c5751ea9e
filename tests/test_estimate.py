"""The cost estimate: GPU-hours from jobs x iterations x batch size over measured throughputs."""
from __future__ import annotations

import pytest

from ddep.estimate import estimate, format_estimate, read_throughputs, throughput

CONFIG = {
    "preset": "r50_vit_b16", "amp": "bf16",
    "datasets": {"cityscapes": {}, "ade20k": {"crop_size": [512, 1024]}},
    "schedule": {"finetune": {"iters": 1000}},
    "resources": {"pretrain_denoise": {"gpu": 4}},
}


def test_measured_and_scaled_throughputs():
    rows = read_throughputs()
    h100 = throughput(rows, "H100", "r50_vit_b16", (512, 1024), "bf16")
    assert h100.img_per_s == 39.6 and "scaled" not in h100.source
    half = throughput(rows, "H100", "r50_vit_b16", (512, 512), "bf16")
    assert half.img_per_s == pytest.approx(79.2) and "scaled from 512x1024 by pixels" in half.source
    with pytest.raises(ValueError, match="no measured throughput for gpu='V100'.*add a row"):
        throughput(rows, "V100", "r50_vit_b16", (512, 1024), "bf16")


def test_gpu_hours_per_rule():
    jobs = [dict(rule="finetune", dataset="cityscapes"), dict(rule="finetune", dataset="ade20k"),
            dict(rule="pretrain_denoise", dataset="cityscapes")]
    rows = {r["rule"]: r for r in estimate(jobs, CONFIG, "H100")}
    # fine-tunes: 1000 iterations (config override) x batch 8 (Cityscapes) / 16 (ADE20K);
    # ADE20K's crop_size override of 512x1024 prices it at the measured 39.6 img/s
    assert rows["finetune"]["jobs"] == 2 and rows["finetune"]["images"] == 1000 * 8 + 1000 * 16
    assert rows["finetune"]["gpu_hours"] == pytest.approx(24000 / 39.6 / 3600)
    # denoising: the schedule's 100k iterations x batch 16 per GPU x 4 GPUs
    assert rows["pretrain_denoise"]["images"] == 100_000 * 16 * 4
    assert rows["pretrain_denoise"]["gpu_hours"] == pytest.approx(6.4e6 / 39.6 / 3600)
    text = format_estimate(list(rows.values()), "H100")
    assert text.splitlines()[0].split() == ["rule", "jobs", "images", "H100", "GPU-hours"]
    assert "total" in text and "45" in text.splitlines()[3]  # 0.17 + 44.9 GPU-hours
