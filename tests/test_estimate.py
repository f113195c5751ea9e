"""The cost estimate: GPU-hours from jobs x iterations x batch size over measured throughputs,
denoising priced by its counted step, from the config alone (no data)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SEGFORMER

from ddep.estimate import (FROM_FLOPS, REFERENCE_MODEL, StepCosts, breakdown, estimate,
                           flops_throughput, format_estimate, read_step_costs, read_throughputs,
                           report, step_cost, sweep_jobs, throughput)
from ddep.sweep import Model

REPO = Path(__file__).resolve().parents[1]
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


def counted_ratio(step: str, crop=(512, 1024)) -> float:
    """The FLOPs ratio straight from the CSV, computed apart from ddep.estimate."""
    rows = {r["step"]: float(r["gflop_per_image"]) for r in read_step_costs()
            if r["preset"] == "r50_vit_b16" and (int(r["crop_h"]), int(r["crop_w"])) == crop}
    return rows[step] / rows["finetune"]


def test_ddep_steps_are_counted_cheaper_than_dep_and_priced_so():
    ddep, dep = counted_ratio("ddep"), counted_ratio("dep")
    assert ddep < 0.75 * dep  # no encoder backward pass: a large saving, not rounding
    assert step_cost(read_step_costs(), "r50_vit_b16", (512, 1024), "ddep")[0] == pytest.approx(ddep)
    with pytest.raises(ValueError, match="no counted step cost for model 'huge'.*denoise_step.py"):
        step_cost(read_step_costs(), "huge", (512, 1024), "dep")


def test_gpu_hours_per_rule_and_arm():
    jobs = [dict(rule="finetune", dataset="cityscapes", arm="21k"),
            dict(rule="finetune", dataset="ade20k", arm="ddep"),
            dict(rule="pretrain_denoise", dataset="cityscapes", arm="ddep"),
            dict(rule="pretrain_denoise", dataset="cityscapes", arm="dep")]
    priced = estimate(jobs, CONFIG, "H100")
    rules = {r["rule"]: r for r in breakdown(priced, "rule").to_dict("records")}
    # fine-tunes: 1000 iterations (config override) x batch 8 (Cityscapes) / 16 (ADE20K);
    # ADE20K's crop_size override of 512x1024 prices it at the measured 39.6 img/s
    assert rules["finetune"]["jobs"] == 2 and rules["finetune"]["images"] == 1000 * 8 + 1000 * 16
    assert rules["finetune"]["gpu_hours"] == pytest.approx(24000 / 39.6 / 3600)
    # denoising: the schedule's 100k iterations x batch 16 per GPU x 4 GPUs, each arm at its
    # counted cost per image relative to a fine-tune
    assert rules["pretrain_denoise"]["images"] == 2 * 100_000 * 16 * 4
    arms = {r["arm"]: r for r in breakdown(priced, "arm").to_dict("records")}
    assert arms["ddep"]["gpu_hours"] == pytest.approx(
        (16000 + 6.4e6 * counted_ratio("ddep")) / 39.6 / 3600)
    assert arms["dep"]["gpu_hours"] == pytest.approx(6.4e6 * counted_ratio("dep") / 39.6 / 3600)
    text = format_estimate(priced, "H100")
    assert text.splitlines()[0].split() == ["per", "rule", "jobs", "images", "H100", "GPU-hours", "priced"]
    assert text.splitlines()[1].endswith("measured") and FROM_FLOPS not in text
    assert "per arm" in text and "ddep" in text and "denoise_step.py" in text


def gflop(preset: str, crop: tuple[int, int], step: str = "finetune") -> float:
    """A counted FLOPs row straight from the CSV, apart from ddep.estimate."""
    return next(float(r["gflop_per_image"]) for r in read_step_costs() if r["preset"] == preset
                and (int(r["crop_h"]), int(r["crop_w"])) == crop and r["step"] == step)


def test_a_model_measured_at_no_precision_of_the_gpu_is_priced_from_its_flops():
    """config/config.yaml's tiny TransUNet has no fp32 row: it is priced at the FLOP/s the
    reference achieved in fp32 on the H100, and the printout says so and names that row."""
    from ddep.sweep_config import load_config, stage_schedule
    config = load_config([str(REPO / "config/config.yaml")])
    priced = estimate([dict(rule="finetune", dataset="builtin", model="transunet_tiny", arm="none")],
                      config, "H100")
    achieved = 15.4 * gflop("r50_vit_b16", (512, 1024))  # GFLOP/s of the r50_vit_b16 fp32 row
    schedule = stage_schedule(config, "builtin", "finetune")  # the built-in fine-tune's samples
    images = schedule["train_cfg"]["max_iters"] * schedule["train_dataloader"]["batch_size"]
    assert priced[0]["priced"] == FROM_FLOPS
    assert priced[0]["gpu_hours"] == pytest.approx(images * gflop("tiny", (64, 128)) / achieved / 3600)
    text = report(config)
    assert re.search(r"^finetune\s+40\s.*from FLOPs$", text, re.M)
    assert f"reference row H100 {REFERENCE_MODEL} none batch 4 (15.4 img/s x 1792.2 GFLOP at 512x1024)" in text


def test_from_flops_and_measured_agree_in_order_of_magnitude_as_the_docs_say():
    """The tiny TransUNet has a measured bf16 row; priced from its FLOPs at the r50_vit_b16
    reference's bf16 FLOP/s instead, it comes out within 10x, and docs/models.md states the ratio."""
    rows = read_throughputs()
    measured = throughput(rows, "H100", "tiny", (512, 1024), "bf16")
    from_flops = flops_throughput(rows, StepCosts(), "H100", Model("tiny"), (512, 1024), "bf16")
    ratio = from_flops.img_per_s / measured.img_per_s
    assert 0.1 < ratio < 10, ratio
    assert from_flops.img_per_s == pytest.approx(39.6 * gflop("r50_vit_b16", (512, 1024))
                                                 / gflop("tiny", (512, 1024)))
    assert f"{ratio:.1f}x the measured" in (REPO / "docs/models.md").read_text()


def test_a_model_never_counted_is_counted_once_on_the_cpu_and_cached(tmp_path, monkeypatch):
    """Counted at estimate time as benchmarks/denoise_step.py counted the committed rows, then
    read back from the cache."""
    from ddep.step_flops import step_gflops
    assert step_gflops("tiny", (64, 128)) == pytest.approx(
        {step: gflop("tiny", (64, 128), step) for step in ("finetune", "dep", "ddep")}, rel=1e-3)
    cache = tmp_path / "step_cost.csv"
    segformer = Model.parse({"name": "seg", "config": SEGFORMER})
    counted = StepCosts(cache=cache).gflops(segformer, (32, 64))  # no committed row at this crop
    assert set(counted) == {"finetune", "dep", "ddep"} and counted["ddep"] < counted["dep"]
    assert len(read_step_costs(cache)) == 3

    def no_count(*args):
        raise AssertionError("counted again")
    monkeypatch.setattr("ddep.step_flops.step_gflops", no_count)
    assert StepCosts(cache=cache).gflops(segformer, (32, 64)) == counted


def test_paper_config_priced_per_part_with_the_release_sizes():
    from ddep.sweep_config import load_config
    config = load_config([str(REPO / "config/paper.yaml")])
    jobs = sweep_jobs(config)
    study = [j for j in jobs if j["part"] == "noise ablations"]
    # the paper's noise study: DeP only, on Pascal Context and ADE20K only
    assert {j["arm"] for j in study} == {"dep"}
    assert {j["dataset"] for j in study} == {"pascal_context59", "ade20k"}
    text = report(config)
    assert "cityscapes 2,975 train images (1/30 = 100, 1/16 = 186" in text
    assert "pascal_context59 4,996 train images (1/16 = 313" in text
    assert "ade20k 20,210 train images (1/16 = 1,264" in text
    with pytest.raises(ValueError, match=r"datasets.ade20k.fractions .*only 20210 exist"):
        report({**config, "datasets": {**config["datasets"],
                                       "ade20k": {**config["datasets"]["ade20k"], "fractions": ["30000"]}}})


def totals(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("total")]


def test_estimate_runs_in_a_fresh_clone_with_no_data_and_the_preflight_still_guards(tmp_path):
    """`snakemake estimate` and `ddep estimate` price config/paper.yaml in a folder with no
    datasets, no ImageNet and no weights, and print the same tables; a dry run there still
    stops in the preflight."""
    for name in ("workflow", "config"):
        shutil.copytree(REPO / name, tmp_path / name)
    # no weights in this cache either, and no FLOPs counted before
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def run(*args):
        return subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                              env=env)
    smk = run(sys.executable, "-m", "snakemake", "--cores", "1", "estimate",
              "--configfile", "config/paper.yaml")
    assert smk.returncode == 0, smk.stderr[-3000:]
    cli = run(sys.executable, "-m", "ddep.cli", "estimate", "--configfile", "config/paper.yaml")
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert len(totals(cli.stdout)) == 5 and totals(cli.stdout) == totals(smk.stdout)
    assert re.search(r"^transunet_r50_vit_b16\s+\d+", cli.stdout, re.M)  # per model
    assert re.search(r"^ddep\s+\d+", cli.stdout, re.M) and "assumed (no data read)" in cli.stdout
    # the built-in configs' models have no fp32 row: priced from their FLOPs, counted beforehand
    for name, models in (("config.yaml", ["transunet_tiny"]),
                         ("models.yaml", ["transunet_tiny", "segformer_b0", "deeplabv3plus_r18"])):
        cli = run(sys.executable, "-m", "ddep.cli", "estimate", "--configfile", f"config/{name}")
        assert cli.returncode == 0, cli.stderr[-3000:]
        for model in models:
            assert re.search(rf"^{model}\s+\d+.*  from FLOPs$", cli.stdout, re.M), cli.stdout
        assert "counting the FLOPs" not in cli.stderr  # the committed counts, no model built
    dry = run(sys.executable, "-m", "snakemake", "--cores", "1", "-n", "--configfile", "config/paper.yaml")
    assert dry.returncode != 0
    assert "problem(s) found before any job ran" in dry.stdout + dry.stderr
    assert "datasets.cityscapes.root: cityscapes: data root does not exist" in dry.stdout + dry.stderr


def test_ddep_on_imagenet_is_priced_at_its_unlabelled_crop():
    """A denoising pretraining runs at its images' crop (config/paper.yaml's `unlabelled_crop`: DDeP's ImageNet at
    224x224), so it is priced there: the measured 512x1024 throughput scaled by pixels, the step-cost ratio counted
    at 224x224. Without it, DDeP's images take the target's crop."""
    import copy

    from ddep.sweep_config import load_config
    cropped = load_config([str(REPO / "config/paper.yaml")])
    assert cropped["datasets"]["cityscapes"]["unlabelled_crop"] == {"ddep": [224, 224]}
    target = copy.deepcopy(cropped)
    for d in target["datasets"].values():
        d.pop("unlabelled_crop")

    def pretraining_hours(cfg: dict, arm: str) -> float:
        return sum(j["gpu_hours"] for j in estimate(sweep_jobs(cfg), cfg, "H100") if j["rule"] == "pretrain_denoise"
                   and j["arm"] == arm and j["dataset"] == "cityscapes")

    pixels = 224 * 224 / (512 * 1024)
    ratio = counted_ratio("ddep", (224, 224)) / counted_ratio("ddep")
    assert pretraining_hours(cropped, "ddep") == pytest.approx(pretraining_hours(target, "ddep") * pixels * ratio)
    assert pretraining_hours(cropped, "dep") == pretraining_hours(target, "dep")  # DeP keeps the target's crop
