"""The SLURM tests' tear-down (tests/test_slurm.py) ends every process a test started, found by the marker in its
environment, even one that ignores SIGTERM and has left its parent. Runs without SLURM."""
import os
import subprocess
import sys
import time
import uuid

from test_slurm import MARKER, _marked, end_marked_processes


def test_the_teardown_ends_a_process_that_ignores_sigterm_and_left_its_parent(tmp_path):
    """An orphan that ignores SIGTERM (as a deadlocked job-step Snakemake) is found by its marker and killed."""
    value = uuid.uuid4().hex
    script = "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(os.getpid(), flush=True); time.sleep(600)"
    parent = subprocess.run(  # a shell that starts it in the background and exits: the sleeper is orphaned
        ["bash", "-c", f"{sys.executable} -c '{script}' > {tmp_path / 'pid'} &"], env=dict(os.environ, **{MARKER: value}))
    assert parent.returncode == 0
    deadline = time.monotonic() + 30
    pid_file = tmp_path / "pid"
    while not (pid_file.is_file() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    assert list(_marked(value)) == [pid]
    stubborn = end_marked_processes(value, grace_s=1.0)
    assert list(stubborn) == [pid] and "time.sleep(600)" in stubborn[pid]
    assert not _marked(value)
