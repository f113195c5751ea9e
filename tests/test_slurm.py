"""Run Snakemake workflows through a real single-node SLURM cluster with the `slurm/` profile.

Opt-in (needs root and a Debian/Ubuntu host; tests/slurm/cluster.sh installs and starts
munge, slurmctld and slurmd):  DDEP_TEST_SLURM=1 python -m pytest tests/test_slurm.py
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
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


# Every process a test starts, on the submit host or in a SLURM job (sbatch and srun pass the environment on), carries
# this variable with the test's own value; the teardown ends them all by it. A job step's Snakemake can outlive its
# job: on SIGTERM it takes its scheduler's lock in the signal handler, and if the signal lands while the lock is held
# it waits forever (only SIGKILL ends it), and a cluster that tracks processes by lineage (proctrack/linuxproc, as the
# test cluster) loses it once it is orphaned, so SLURM's own SIGKILL never reaches it.
MARKER = "DDEP_TEST_SLURM_RUN"


def _marked(value: str) -> dict[int, str]:
    """pid -> command line of every live process whose environment has MARKER=value."""
    found, needle = {}, f"{MARKER}={value}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone, or a zombie (no environment left)
            continue
    return found


def _signal_all(pids, sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def end_marked_processes(value: str, grace_s: float = 10.0) -> dict[int, str]:
    """SIGTERM every process marked with `value`, SIGKILL those alive `grace_s` later; returns the ones that
    needed SIGKILL (pid -> command line)."""
    _signal_all(_marked(value), signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _marked(value) and time.monotonic() < deadline:
        time.sleep(0.2)
    stubborn = _marked(value)
    _signal_all(stubborn, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _marked(value) and time.monotonic() < deadline:
        time.sleep(0.2)
    return stubborn


@pytest.fixture
def tracked():
    """The environment that marks this test's processes, and the SLURM jobs it submitted. Tear-down: cancel the
    jobs, end every marked process (SIGTERM, then SIGKILL), and fail if any is still alive."""
    value, jobs = uuid.uuid4().hex, set()
    env = dict(os.environ, **{MARKER: value},
               # Rule shell commands find this env's `python`/`ddep` (sbatch --export=ALL passes PATH on).
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    yield env, jobs
    if jobs:
        subprocess.run(["scancel", *sorted(jobs)], capture_output=True)
    if stubborn := end_marked_processes(value):
        print("ended with SIGKILL after ignoring SIGTERM:\n" + "\n".join(f"  {p}: {c}" for p, c in stubborn.items()))
    assert not (alive := _marked(value)), f"processes started by this test survived SIGKILL: {alive}"


def run_snakemake_on_slurm(workdir, extra_args=(), timeout=1800, env=None):
    """Run `snakemake --cores all --profile slurm` in `workdir` with this Python's snakemake.

    The profile is the repository's `slurm/` (passed by absolute path, so `workdir` need not
    contain it). `extra_args` go last and override profile keys. Returns the
    CompletedProcess (stdout and stderr merged into .stdout); the caller checks returncode.
    """
    env = dict(env or os.environ)
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
    # Finished jobs stay visible for MinJobAge (3600 s in tests/slurm/slurm.conf.in).
    return subprocess.run(
        ["scontrol", "show", "job", jobid], capture_output=True, text=True, check=True
    ).stdout


def test_smoke_grid_runs_through_sbatch_with_the_repository_profile(slurm_cluster, tracked, tmp_path):
    import pandas as pd
    import yaml

    for name in ("workflow", "config"):
        shutil.copytree(REPO / name, tmp_path / name)
    # The smoke grid's data and schedules, one model, the arms none and DDeP (DDeP needs the
    # supervised stand-in and a denoising pretraining) and no ablations: every rule goes
    # through SLURM; the other arms, the second model and the ablation axes differ only in
    # their arguments, and the local smoke test runs them.
    cfg = yaml.safe_load((tmp_path / "config/smoke.yaml").read_text())
    cfg.pop("models")
    cfg.update(arms=["none", "ddep"], ablations=[])
    (tmp_path / "config/smoke_slurm.yaml").write_text(yaml.safe_dump(cfg))
    env, tracked_jobs = tracked
    proc = run_snakemake_on_slurm(tmp_path, ["--configfile", "config/smoke_slurm.yaml"], timeout=1500, env=env)
    tracked_jobs.update(submitted_jobs(proc.stdout))
    assert proc.returncode == 0, proc.stdout[-5000:]

    # Every training/data job went through sbatch on the gpu partition; aggregation, plotting
    # and splits ran on the submit host.
    jobs = submitted_jobs(proc.stdout)
    rules = {re.search(r"/rule_(\w+)/", log)[1] for log in jobs.values()}
    assert rules == {"generate_builtin", "pretrain_supervised", "pretrain_denoise", "finetune"}, rules
    runs = pd.read_csv(tmp_path / "results/runs.csv", keep_default_na=False)
    n_finetune = sum("/rule_finetune/" in log for log in jobs.values())
    assert n_finetune == len(runs) > 0
    for jobid, log in jobs.items():
        assert Path(log).is_file(), f"missing SLURM log {log}"  # slurm-keep-successful-logs
        info = scontrol_job(jobid)
        assert "JobState=COMPLETED" in info and "Partition=gpu" in info, info
        if "/rule_generate_builtin/" not in log:  # training rules ask for a GPU in the config
            assert re.search(r"TresPerJob=gres[:/]gpu:1\b", info), info
    for local in ("aggregate", "figures", "split"):
        assert not (tmp_path / ".snakemake" / "slurm_logs" / f"rule_{local}").exists()
    assert (tmp_path / "figures" / "builtin_label_efficiency.png").stat().st_size > 0
    assert set(runs.arm) == set(cfg["arms"]) and set(runs.model) == {"transunet_tiny"}


def _ddep(*args, wait: bool = True, cwd: Path | None = None) -> subprocess.Popen:
    """`ddep ARGS` on this host, one thread (as the rules run it); wait=False: don't wait."""
    proc = subprocess.Popen([sys.executable, "-m", "ddep.cli", *map(str, args)], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    if wait:
        err = proc.communicate()[1]
        assert proc.returncode == 0, err[-3000:]
    return proc


def _checkpoint_step(work: Path) -> int:
    last = work / "last_checkpoint"
    text = last.read_text().strip() if last.exists() else ""
    return int(re.search(r"iter_(\d+)\.pth$", text)[1]) if text else 0


# How each fine-tune of the preemption test is stopped: (command, how it resumes).
STOPS = {
    # a signal to the job's steps, as the profile's --signal=TERM@300 sends before the time
    # limit: the job saves a checkpoint at the end of its step and exits (code 75); the
    # profile's retries resubmit it
    0: (["scancel", "--signal=TERM", "{job}"], "checkpointed"),
    # a cancel (SLURM turns a job-wide SIGKILL into one; preemption and the time limit do the
    # same): SIGTERM to every process, SIGKILL KillWait seconds later; the job checkpoints first
    1: (["scancel", "--signal=KILL", "{job}"], "checkpointed"),
    # SIGKILL to the running step alone, no warning (as an OOM kill or a node crash): the job
    # resumes from its last periodic checkpoint
    2: (["scancel", "--signal=KILL", "{job}.0"], "periodic"),
    # SLURM requeues the job itself (what PreemptMode=REQUEUE does): SIGTERM, then the same job
    # id runs again; the plugin waits for it and nothing is resubmitted
    3: (["scontrol", "requeue", "{job}"], "requeued"),
}


def _release_requeued(jobid: str) -> bool:
    """A requeued job waits ~2 minutes (BeginTime); let it start now. False until it is pending."""
    if "JobState=PENDING" not in scontrol_job(jobid):
        return False
    subprocess.run(["scontrol", "update", f"JobId={jobid}", "StartTime=now"], check=True)
    return True


def test_preempted_jobs_are_resubmitted_and_resume_bit_for_bit(slurm_cluster, tracked, tmp_path):
    """Four fine-tunes on SLURM, each stopped mid-way as in STOPS; the profile's retries (or
    SLURM's requeue) run them again, they resume from their last checkpoint, and their run JSONs
    equal those of uninterrupted runs of the same commands. Every process it started, in SLURM's
    job steps too, is ended by the tear-down (`tracked`), which fails if one survives."""
    import yaml

    iters, interval, seeds = 24, 4, sorted(STOPS)
    data = tmp_path / "data"
    _ddep("generate-builtin", "--root", data, "--n-train", 24, "--n-val", 8, "--n-unlabelled", 8,
          "--n-source-train", 8, "--n-source-val", 4)
    shutil.copytree(REPO / "workflow", tmp_path / "workflow")
    (tmp_path / "config").mkdir()
    cfg = dict(preset="tiny", threads=1, seeds=seeds, arms=["none"],
               datasets=dict(builtin=dict(root=str(data), fractions=["8"], unlabelled=None,
                                          encoder_weights=None)),
               denoising=dict(sigma=0.2),
               schedule=dict(finetune=dict(iters=iters, checkpoint_interval=interval)),
               resources=dict(finetune=dict(gpu=1, cpus_per_gpu=1, mem_mb=2000, runtime=10)))
    (tmp_path / "config" / "preempt.yaml").write_text(yaml.safe_dump(cfg))
    runs = {seed: f"resources/runs/builtin/transunet_tiny/8/none/seed{seed}.json" for seed in seeds}
    works = {seed: tmp_path / f"work/finetune/builtin/transunet_tiny/8/none/seed{seed}" for seed in seeds}

    def attempts(seed: int, output: str) -> list[str]:
        return [j for j, log in submitted_jobs(output).items() if f"/builtin_transunet_tiny_8_none_{seed}/" in log]

    start = time.monotonic()
    env, tracked_jobs = tracked
    log_path = tmp_path / "snakemake.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake", *runs.values(), "--cores", "all", "--profile",
             str(PROFILE), "--slurm-init-seconds-before-status-checks", "2",
             "--configfile", "config/preempt.yaml"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            stopped = {}
            deadline = time.monotonic() + 600
            while len(stopped) < len(STOPS):  # stop each job once it has saved a checkpoint mid-way
                assert proc.poll() is None, log_path.read_text()[-5000:]
                assert time.monotonic() < deadline, "the jobs never reached a mid-way checkpoint"
                output = log_path.read_text()
                for seed, (cmd, _) in STOPS.items():
                    jobs = attempts(seed, output)
                    if seed not in stopped and jobs and interval <= _checkpoint_step(works[seed]) < iters // 2:
                        subprocess.run([c.format(job=jobs[0]) for c in cmd], check=True)
                        stopped[seed] = (jobs[0], _checkpoint_step(works[seed]))
                time.sleep(0.2)
            requeued = stopped[3][0]
            while not _release_requeued(requeued):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
            assert proc.wait(timeout=900) == 0, log_path.read_text()[-5000:]
        finally:
            tracked_jobs.update(submitted_jobs(log_path.read_text()))
            if proc.poll() is None:
                proc.kill()
    print(f"SLURM preemption workflow: {time.monotonic() - start:.0f} s")

    output = log_path.read_text()
    for seed, (first, at) in stopped.items():
        jobs, how = attempts(seed, output), STOPS[seed][1]
        assert jobs[0] == first
        if how == "requeued":  # the same job ran twice
            assert len(jobs) == 1 and re.search(r"Restarts=1\b", scontrol_job(first)), scontrol_job(first)
        else:  # resubmitted once
            assert len(jobs) == 2, jobs
            assert re.search(r"JobState=(FAILED|CANCELLED)", scontrol_job(first)), scontrol_job(first)
        assert "JobState=COMPLETED" in scontrol_job(jobs[-1])
        logs = [p.read_text() for p in sorted(works[seed].rglob("*.log"))]
        assert len(logs) == 2 and "Advance dataloader" not in logs[0]
        resumed = int(re.search(r"Advance dataloader (\d+) steps", logs[1])[1])
        saved = re.search(r"received SIGTERM: checkpoint saved after iteration (\d+)", logs[0])
        if how == "periodic":  # killed outright: from the last periodic checkpoint
            assert not saved and resumed % interval == 0 and resumed >= at, logs[0][-3000:]
        else:  # checkpointed at the step the signal arrived in
            assert saved and resumed == int(saved[1]) >= at, logs[0][-3000:]

    refs = {seed: _ddep(  # the rule's commands, from the workflow's folder, uninterrupted, outside SLURM
        "finetune", "--arm", "none", "--dataset", "builtin", "--data-root", data,
        "--split", f"resources/splits/builtin/8_seed{seed}.txt", "--label-fraction", "8",
        "--seed", seed, "--out", tmp_path / f"ref{seed}.json", "--work-dir", tmp_path / f"ref{seed}",
        "--preset", "tiny", "--amp", "none", "--iters", iters, "--checkpoint-interval", interval,
        wait=False, cwd=tmp_path) for seed in seeds}
    keys = ("mIoU", "aAcc", "mAcc", "per_class_iou", "iterations", "n_labelled", "config_hash")
    for seed, ref in refs.items():
        err = ref.communicate()[1]  # reads the pipe: a full one would block the job
        assert ref.returncode == 0, err[-3000:]
        got, want = (json.loads(p.read_text()) for p in (tmp_path / runs[seed], tmp_path / f"ref{seed}.json"))
        assert {k: got[k] for k in keys} == {k: want[k] for k in keys}, seed
