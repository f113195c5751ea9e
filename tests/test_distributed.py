"""The multi-GPU path (torchrun + `--launcher pytorch`, as config/paper.yaml runs denoising
pretraining on 4 GPUs) exercised on CPU: 2 processes, gloo, plain BN."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.slow
FAST = ["--iters", "4", "--checkpoint-interval", "2", "--batch-size", "2"]


def run(*args: object, nproc: int = 2) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "ddep.cli", *map(str, args), "--launcher", "pytorch"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


def test_pretrain_and_finetune_under_torchrun_on_two_cpu_processes(tmp_path):
    root = tmp_path / "builtin"
    for args in (("generate-builtin", "--root", root, "--n-train", 8, "--n-val", 4,
                  "--n-unlabelled", 8, "--n-source-train", 4, "--n-source-val", 2),
                 ("split", "--dataset", "builtin", "--data-root", root, "--fraction", 4,
                  "--out", tmp_path / "split.txt")):
        subprocess.run([sys.executable, "-m", "ddep.cli", *map(str, args)], check=True,
                       capture_output=True)

    weights = tmp_path / "dep.pth"
    proc = run("pretrain-denoise", "--arm", "dep", "--dataset", "builtin", "--data-root", root,
               "--out", weights, "--work-dir", tmp_path / "w_dep", *FAST)
    # every rank trains to the end (DDP's gradient all-reduce needs both) and reports
    assert proc.stdout.count("dep sigma=0.2 -> ") == 2, proc.stdout
    meta = torch.load(weights, weights_only=True)["meta"]
    assert meta["world_size"] == 2 and meta["iterations"] == 4
    log = next((tmp_path / "w_dep").rglob("*.log")).read_text()
    assert "Distributed training: True" in log and "'backend': 'gloo'" in log

    out = tmp_path / "run.json"
    proc = run("finetune", "--arm", "dep", "--dataset", "builtin", "--data-root", root,
               "--split", tmp_path / "split.txt", "--init-from", weights, "--out", out,
               "--work-dir", tmp_path / "w_ft", *FAST)
    assert proc.stdout.count("mIoU ") == 2, proc.stdout
    result = json.loads(out.read_text())
    assert result["world_size"] == 2 and result["iterations"] == 4 and 0 <= result["mIoU"] <= 100
    # rank 0 alone writes: one output, its config (and the pretraining its JSON) each, no stray
    # temporary files, no resume checkpoints left
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "dep.json", "dep.pth", "dep.py", "run.json", "run.py", "split.txt"]
    assert not list((tmp_path / "w_ft").rglob("*.pth"))
