"""install.sh's mmcv option: CPU ops by default, mmcv's CUDA kernels with DDEP_MMCV_CUDA=1 where nvcc exists, one
clear line where it does not. `build_mmcv.sh --dry-run` says what it would build; nothing is compiled here."""
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def dry_run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CUDA_HOME": str(tmp_path / "no_cuda")}
    return subprocess.run(["bash", str(REPO / "build_mmcv.sh"), "--dry-run", "python3", "2.1.0", str(tmp_path / "out")],
                          capture_output=True, text=True, env={**base, **env})


def test_the_default_build_has_cpu_ops_only(tmp_path):
    proc = dry_run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "with CPU ops only: CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1" in proc.stdout and "FORCE_CUDA" not in proc.stdout
    assert not (tmp_path / "out").exists()  # a dry run builds and writes nothing


def test_cuda_ops_use_the_toolkits_nvcc(tmp_path):
    nvcc = tmp_path / "cuda" / "bin" / "nvcc"
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 13.0'\n")
    nvcc.chmod(0o755)
    on_path = dry_run(tmp_path, DDEP_MMCV_CUDA="1", PATH=f"{nvcc.parent}:/usr/bin:/bin")
    assert on_path.returncode == 0, on_path.stderr
    assert f"CUDA and CPU ops (nvcc: {nvcc})" in on_path.stdout
    assert f"FORCE_CUDA=1 CUDA_HOME={tmp_path / 'cuda'}" in on_path.stdout and "CUDA_VISIBLE_DEVICES" not in on_path.stdout
    in_cuda_home = dry_run(tmp_path, DDEP_MMCV_CUDA="1", CUDA_HOME=str(tmp_path / "cuda"))
    assert in_cuda_home.returncode == 0 and f"(nvcc: {nvcc})" in in_cuda_home.stdout


def test_cuda_ops_without_nvcc_stop_with_one_line(tmp_path):
    proc = dry_run(tmp_path, DDEP_MMCV_CUDA="1")
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert "DDEP_MMCV_CUDA=1 needs the CUDA toolkit's nvcc" in line and "unset DDEP_MMCV_CUDA" in line


def test_install_caches_a_cuda_build_apart_from_the_cpu_one():
    script = (REPO / "install.sh").read_text()
    assert 'ops=cpu; [ "${DDEP_MMCV_CUDA:-0}" = 1 ] && ops=cuda' in script
    assert '[ "$ops" = cpu ] || wheel_dir="$wheel_dir-$ops"' in script
    assert os.access(REPO / "build_mmcv.sh", os.R_OK)
