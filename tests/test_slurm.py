"""Run Snakemake workflows through a real single-node SLURM cluster with the `slurm/` profile.

Opt-in (needs root and a Debian/Ubuntu host; tests/slurm/cluster.sh installs and starts
munge, slurmctld and slurmd):  DDEP_TEST_SLURM=1 python -m pytest tests/test_slurm.py
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "tests" / "slurm" / "cluster.sh"
PROFILE = REPO / "slurm"
SUBMITTED_RE = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        os.environ.get("DDEP_TEST_SLURM") != "1",
        reason="SLURM tests start a local SLURM cluster (root, apt); set DDEP_TEST_SLURM=1 to run",
    ),
]


def _cluster(cmd: str, timeout: int) -> None:
    proc = subprocess.run(
        ["bash", str(CLUSTER_SH), cmd], capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        pytest.fail(f"cluster.sh {cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


@pytest.fixture(scope="module")
def slurm_cluster():
    _cluster("start", timeout=600)  # apt-get install on a fresh machine; ~2 s once installed
    try:
        yield
    finally:
        _cluster("stop", timeout=120)


def run_snakemake_on_slurm(workdir, extra_args=(), timeout=1800):
    """Run `snakemake --cores all --profile slurm` in `workdir` with this Python's snakemake.

    The profile is the repository's `slurm/` (passed by absolute path, so `workdir` need not
    contain it). `extra_args` go last and override profile keys. Returns the
    CompletedProcess (stdout and stderr merged into .stdout); the caller checks returncode.
    """
    env = dict(os.environ)
    # Rule shell commands find this env's `python`/`ddep` (sbatch --export=ALL passes PATH on).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [
        sys.executable, "-m", "snakemake",
        "--cores", "all",
        "--profile", str(PROFILE),
        # Test cluster: first status poll after 2 s instead of 40 s.
        "--slurm-init-seconds-before-status-checks", "2",
        *map(str, extra_args),
    ]
    return subprocess.run(
        cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=timeout,
    )


def submitted_jobs(output: str) -> dict[str, str]:
    """SLURM job id -> SLURM log path, from the plugin's 'has been submitted' log lines."""
    return {m.group(1): m.group(2) for m in SUBMITTED_RE.finditer(output)}


def scontrol_job(jobid: str) -> str:
    # Finished jobs stay visible for MinJobAge (600 s in tests/slurm/slurm.conf.in).
    return subprocess.run(
        ["scontrol", "show", "job", jobid], capture_output=True, text=True, check=True
    ).stdout


def test_smoke_grid_runs_through_sbatch_with_the_repository_profile(slurm_cluster, tmp_path):
    import pandas as pd
    import yaml

    for name in ("workflow", "config"):
        shutil.copytree(REPO / name, tmp_path / name)
    proc = run_snakemake_on_slurm(tmp_path, ["--configfile", "config/smoke.yaml"], timeout=1500)
    assert proc.returncode == 0, proc.stdout[-5000:]

    # Every training/data job went through sbatch on the gpu partition; aggregation, plotting
    # and splits ran on the submit host.
    jobs = submitted_jobs(proc.stdout)
    rules = {re.search(r"/rule_(\w+)/", log)[1] for log in jobs.values()}
    assert rules == {"generate_builtin", "pretrain_supervised", "pretrain_denoise", "finetune"}, rules
    cfg = yaml.safe_load((tmp_path / "config/smoke.yaml").read_text())
    runs = pd.read_csv(tmp_path / "results/runs.csv", keep_default_na=False)
    n_finetune = sum("/rule_finetune/" in log for log in jobs.values())
    assert n_finetune == len(runs) > 0
    for jobid, log in jobs.items():
        assert Path(log).is_file(), f"missing SLURM log {log}"  # slurm-keep-successful-logs
        info = scontrol_job(jobid)
        assert "JobState=COMPLETED" in info and "Partition=gpu" in info, info
        if "/rule_generate_builtin/" not in log:  # training rules ask for a GPU in the config
            assert re.search(r"TresPerJob=gres[:/]gpu:1\b", info), info
    for local in ("aggregate", "figures", "split", "plan"):
        assert not (tmp_path / ".snakemake" / "slurm_logs" / f"rule_{local}").exists()
    assert (tmp_path / "figures" / "builtin_label_efficiency.png").stat().st_size > 0
    assert set(runs.arm) == set(cfg["arms"])
