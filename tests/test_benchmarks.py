"""The benchmark scripts run, and print the table they promise, at the smallest sizes on the CPU:
the GPU check runs them rarely, on borrowed minutes, so a broken script must show up here."""
import csv
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_train_step_prints_a_row_per_variant_and_the_overhead_where_measured():
    out = _run("benchmarks/train_step.py", "--preset", "tiny", "--size", "32", "64", "--batch", "2",
               "--iters", "2", "--warmup", "1", "--rounds", "1", "--overhead", "first",
               "--variants", "base", "channels_last", "bf16")
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| CPU")]
    assert [r[5].strip() for r in rows] == ["base", "channels_last", "bf16"]
    assert [r[4].strip() for r in rows] == ["none", "none", "bf16"]
    assert float(rows[0][11]) > 0 and [r[11].strip() for r in rows[1:]] == ["–", "–"]
    assert all(float(r[6]) > 0 and float(r[8]) > 0 for r in rows)
    ms = [float(r[6]) for r in rows]  # "vs baseline": each variant's step time over the first's
    assert [float(r[12]) for r in rows] == pytest.approx([m / ms[0] for m in ms], rel=0.01, abs=2e-3)
    # channels_last changes the losses by float rounding only; bf16 by more than nothing
    assert float(rows[1][13]) < 1e-3 and float(rows[2][13]) > 0
    assert "GFLOP" in out


def test_denoise_step_counts_ddep_cheaper_than_dep_and_writes_the_csv(tmp_path):
    out = tmp_path / "step_cost.csv"
    out.write_text("preset,crop_h,crop_w,step,gflop_per_image,trainable_params,cpu_s_per_image,measured\n"
                   "other,1,1,finetune,1,1,1,kept\n")
    text = _run("benchmarks/denoise_step.py", "--preset", "tiny", "--size", "32", "64",
                "--iters", "1", "--rounds", "1", "--warmup", "0", "--csv", str(out))
    rows = {r["step"]: r for r in csv.DictReader(out.open()) if r["preset"] == "tiny"}
    assert set(rows) == {"finetune", "dep", "ddep"} and "other,1,1" in out.read_text()
    flops = {s: float(r["gflop_per_image"]) for s, r in rows.items()}
    assert flops["ddep"] < 0.8 * flops["dep"]  # no encoder backward
    assert int(rows["ddep"]["trainable_params"]) < int(rows["dep"]["trainable_params"])
    assert "DDeP / DeP:" in text


def test_train_step_refuses_an_unknown_option():
    done = subprocess.run([sys.executable, "benchmarks/train_step.py", "--variants", "base", "fast"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "unknown option(s) ['fast']" in done.stderr


@pytest.mark.slow
def test_data_loader_times_cityscapes_shaped_images():
    out = _run("benchmarks/data_loader.py", "--fake", "2", "--samples", "2", "--workers", "1",
               "--batches", "1")
    assert "2 training images" in out and "e.g. 2048x1024" in out
    assert "DataLoader, 1 worker(s)" in out and "workers per GPU" in out


@pytest.mark.parametrize("script", ["gpu_check.sh", "gpu_env.sh", "gpu_bundle.sh"])
def test_gpu_scripts_parse(script):
    subprocess.run(["bash", "-n", REPO / "benchmarks" / script], check=True)
