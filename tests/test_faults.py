"""Faults and bad input, through the real CLI and mmengine Runner (tiny preset, built-in data).

A killed or signalled job resumes bit for bit; every bad input stops a job with one message
naming the file or setting (exit 2, no traceback) and leaves no output behind."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from test_train import FAST, data, ddep, ddep_inline, metrics  # noqa: F401  (data: the built-in data fixture)

pytestmark = pytest.mark.slow
LONG = ["--iters", "40", "--checkpoint-interval", "4", "--batch-size", "4"]


def command(step, root, out, work, *extra):
    """A `ddep finetune` (arm none, the 8-image split) or `ddep pretrain-denoise` (DeP) command."""
    args = (["finetune", "--arm", "none", "--split", root / "split_8.txt", "--label-fraction", "8"]
            if step == "finetune" else ["pretrain-denoise", "--arm", "dep", "--sigma", "0.1", "0.4"])
    return [sys.executable, "-m", "ddep.cli", *map(str, args), "--dataset", "builtin",
            "--data-root", str(root), "--out", str(out), "--work-dir", str(work), *map(str, extra)]


def checkpoint_step(work: Path) -> int:
    """The iteration of the checkpoint a rerun would resume from (0: none)."""
    last = work / "last_checkpoint"
    text = last.read_text().strip() if last.exists() else ""
    return int(re.search(r"iter_(\d+)\.pth$", text)[1]) if text else 0


def run_until_checkpoint(cmd, work: Path, after: int, **popen) -> subprocess.Popen:
    """Start ``cmd`` and return once it has saved a checkpoint later than iteration ``after``."""
    proc = subprocess.Popen(cmd, **popen)
    deadline = time.time() + 300
    while checkpoint_step(work) <= after:
        assert proc.poll() is None, "the job ended before it could be stopped"
        assert time.time() < deadline
        time.sleep(0.02)
    return proc


def resumed_from(work: Path) -> list[int]:
    logs = "".join(p.read_text() for p in sorted(work.rglob("*.log")))
    return [int(n) for n in re.findall(r"Advance dataloader (\d+) steps", logs)]


# --- killed and signalled jobs ---------------------------------------------------------------

def long_job(step, root, tmp_path, name):
    """A 40-iteration job writing ``name`` (.json or .pth) with work dir ``work_name``."""
    out = tmp_path / f"{name}{'.json' if step == 'finetune' else '.pth'}"
    return command(step, root, out, tmp_path / f"work_{name}", *LONG)


def rerun_and_run_uninterrupted(step, root, tmp_path, name):
    """Rerun the stopped job ``name`` (it resumes) and run the same job uninterrupted ("full")."""
    for run in (name, "full"):
        done = subprocess.run(long_job(step, root, tmp_path, run), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]


def test_killed_denoising_pretraining_resumes_bit_identically(data, tmp_path):
    root, _ = data
    work = tmp_path / "work_killed"
    proc = run_until_checkpoint(long_job("denoise", root, tmp_path, "killed"), work, after=4,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.kill(proc.pid, signal.SIGKILL)  # kill -9, mid-training
    proc.wait()
    killed_at = checkpoint_step(work)
    assert 4 < killed_at < 40 and not (tmp_path / "killed.pth").exists()
    rerun_and_run_uninterrupted("denoise", root, tmp_path, "killed")
    assert resumed_from(work) == [killed_at]  # resumed, not restarted
    killed, full = (torch.load(tmp_path / f"{n}.pth", weights_only=True) for n in ("killed", "full"))
    assert killed["meta"]["final_loss"] == full["meta"]["final_loss"]
    assert killed["state_dict"].keys() == full["state_dict"].keys()
    assert all(torch.equal(v, full["state_dict"][k]) for k, v in killed["state_dict"].items())


def test_sigterm_checkpoints_at_that_step_and_the_rerun_matches_an_uninterrupted_run(data, tmp_path):
    root, _ = data
    work = tmp_path / "work_stopped"
    proc = run_until_checkpoint(long_job("finetune", root, tmp_path, "stopped"), work, after=4,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    proc.send_signal(signal.SIGTERM)  # what SLURM sends on preemption, scancel or --signal
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err[-3000:]
    m = re.search(r"stopped: stopped by SIGTERM after iteration (\d+); checkpoint (\S+) saved: "
                  r"rerun the same command to resume", err)
    assert m and "Traceback" not in err, err[-3000:]
    step = int(m[1])
    assert 4 < step < 40 and checkpoint_step(work) == step and Path(m[2]).is_file()
    # only what resuming needs: one checkpoint, no temporary files, no output
    assert sorted(p.name for p in work.glob("*.pth")) == [f"iter_{step}.pth"]
    assert not list(work.glob(".*")) and not (tmp_path / "stopped.json").exists()
    rerun_and_run_uninterrupted("finetune", root, tmp_path, "stopped")
    assert resumed_from(work) == [step]
    assert metrics(tmp_path / "stopped.json") == metrics(tmp_path / "full.json")


# --- bad input -------------------------------------------------------------------------------

@pytest.fixture
def copy(data, tmp_path):
    """A copy of the built-in data to break, and the stems of its 8-image split."""
    root, split = data
    shutil.copytree(root, tmp_path / "data")
    return tmp_path / "data", split.read_text().split()


def fails_cleanly(cmd, tmp_path, *expected):
    """Run the `ddep` command ``cmd`` (in this process: it stops early); it must fail with exit 2,
    print each of ``expected`` and no traceback, and leave no output."""
    assert cmd[:3] == [sys.executable, "-m", "ddep.cli"], cmd
    proc = ddep_inline(*cmd[3:])
    assert proc.returncode == 2, proc.stderr[-3000:]
    for text in expected:
        assert text in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "DataLoader worker" not in proc.stderr, proc.stderr
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.rglob("*.pth"))
    return proc


@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("damage, problem", [
    ("truncate", "truncated PNG (no IEND chunk)"),
    ("garbage", "failed to load image"),
    ("empty", "the file is empty"),
])
def test_an_unreadable_image_is_named(copy, tmp_path, damage, problem, workers):
    root, stems = copy
    image = root / "img_dir" / "train" / f"{stems[3]}.png"
    raw = image.read_bytes()
    image.write_bytes({"truncate": raw[: len(raw) // 2], "garbage": b"\x00not an image" * 50,
                       "empty": b""}[damage])
    fails_cleanly(command("finetune", root, tmp_path / "out.json", tmp_path / "work", *FAST,
                          "--num-workers", workers),
                  tmp_path, f"error: cannot read image {image}: {problem}")


def test_an_unreadable_unlabelled_image_stops_denoising(copy, tmp_path):
    root, _ = copy
    image = sorted((root / "img_dir" / "train").glob("*.png"))[5]
    image.write_bytes(image.read_bytes()[:300])
    fails_cleanly(command("denoise", root, tmp_path / "out.pth", tmp_path / "work", *FAST),
                  tmp_path, f"cannot read image {image}: truncated PNG")


def test_label_values_outside_the_classes_are_named(copy, tmp_path):
    root, stems = copy
    label = root / "ann_dir" / "train" / f"{stems[2]}.png"
    values = np.array(Image.open(label))
    values[0, :3], values[1, :3], values[2, :3] = 12, 40, 255  # 255 is the ignore value: fine
    Image.fromarray(values).save(label)
    fails_cleanly(command("finetune", root, tmp_path / "out.json", tmp_path / "work", *FAST), tmp_path,
                  f"label map {label} has values 12, 40 outside the dataset's 9 classes (0..8, ignore 255)")


def test_a_label_map_of_another_size_is_named(copy, tmp_path):
    root, stems = copy
    label = root / "ann_dir" / "train" / f"{stems[1]}.png"
    Image.open(label).resize((64, 64), Image.NEAREST).save(label)
    image = root / "img_dir" / "train" / f"{stems[1]}.png"
    fails_cleanly(command("finetune", root, tmp_path / "out.json", tmp_path / "work", *FAST), tmp_path,
                  f"label map {label} is 64x64 but its image {image} is 64x128")


def test_an_empty_split_or_a_fraction_of_no_images_is_refused(copy, tmp_path):
    root, _ = copy
    (root / "split_8.txt").write_text("\n")
    fails_cleanly(command("finetune", root, tmp_path / "out.json", tmp_path / "work", *FAST), tmp_path,
                  f"split file {root / 'split_8.txt'} lists no images")
    assert not (tmp_path / "work").exists()  # refused before anything was built
    for fraction, message in (("0", "image count must be >= 1"), ("0.0", "must be in (0, 1]"),
                              ("1/0", "invalid label fraction")):
        proc = ddep_inline("split", "--dataset", "builtin", "--data-root", root, "--fraction",
                           fraction, "--out", tmp_path / "out_split.txt")
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not list(tmp_path.glob("out*"))


@pytest.fixture(scope="module")
def dep_checkpoint(data, tmp_path_factory):
    root, _ = data
    out = tmp_path_factory.mktemp("dep") / "dep.pth"
    ddep("pretrain-denoise", "--arm", "dep", "--dataset", "builtin", "--data-root", root,
         "--out", out, "--work-dir", out.parent / "work", *FAST)
    return out


def test_init_from_a_checkpoint_of_another_preset_or_architecture_names_both(
        data, dep_checkpoint, tmp_path):
    root, _ = data
    cmd = lambda ckpt, *extra: command("finetune", root, tmp_path / "out.json", tmp_path / "work",
                                       "--arm", "dep", "--init-from", ckpt, *FAST, *extra)
    fails_cleanly(cmd(dep_checkpoint, "--preset", "r50_vit_b16"), tmp_path,
                  f"{dep_checkpoint} was pretrained with model 'transunet_tiny', but this fine-tune "
                  f"builds model 'transunet_r50_vit_b16'")
    # without the preset in its meta: the shapes tell
    state = torch.load(dep_checkpoint, weights_only=True)["state_dict"]
    bare = tmp_path / "bare.ckpt"
    torch.save({"state_dict": state}, bare)
    fails_cleanly(cmd(bare, "--preset", "r50_vit_b16"), tmp_path,
                  f"{bare} does not fit this TransUNetEncoder + TransUNetHead model (",
                  "tensors of another shape")
    other = tmp_path / "other.ckpt"  # another architecture altogether
    torch.save({"state_dict": {"encoder.conv1.weight": torch.zeros(8, 3, 3, 3)}}, other)
    fails_cleanly(cmd(other), tmp_path, f"{other} does not fit this TransUNetEncoder + TransUNetHead "
                                        f"model (none of its 1 tensors has a name of this model)")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    fails_cleanly(cmd(junk), tmp_path, f"{junk} is not a weights checkpoint written by `ddep pretrain-denoise`")


def test_a_timm_checkpoint_of_another_model_is_named(data, tmp_path):
    import timm
    from safetensors.torch import save_file
    root, _ = data
    weights = tmp_path / "vit_tiny.safetensors"
    save_file(timm.create_model("vit_tiny_patch16_224", pretrained=False).state_dict(), str(weights))
    fails_cleanly(command("finetune", root, tmp_path / "out.json", tmp_path / "work", "--arm", "21k",
                          "--encoder-weights", weights, *FAST),
                  tmp_path, f"timm checkpoint {weights} does not fit the 'tiny' TransUNet encoder")


@pytest.mark.parametrize("sigma, message", [
    (["-0.1"], "noise sigma must be a finite number >= 0, got -0.1"),
    (["nan"], "noise sigma must be a finite number >= 0, got nan"),
    (["0.4", "0.2"], "noise sigma interval [a, b] needs finite 0 <= a <= b, got [0.4, 0.2]"),
    (["0.1", "nan"], "needs finite 0 <= a <= b, got [0.1, nan]"),
])
def test_bad_noise_settings_are_refused_before_training(data, tmp_path, sigma, message):
    root, _ = data
    cmd = command("denoise", root, tmp_path / "out.pth", tmp_path / "work", *FAST)
    at = cmd.index("--sigma")
    cmd[at + 1: at + 3] = sigma
    fails_cleanly(cmd, tmp_path, message)
    assert not (tmp_path / "work").exists()


# --- an output folder that is read-only or full ----------------------------------------------

@pytest.fixture
def tmpfs(tmp_path):
    """A 128 MiB tmpfs (needs root, as the SLURM test); a tiny checkpoint is ~30 MB."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_a_read_only_output_folder_fails_before_training(data, tmpfs):
    root, _ = data
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    cmd = command("finetune", root, tmpfs / "run.json", tmpfs / "work", *FAST)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"error: cannot write {tmpfs / 'work'}: Read-only file system" in proc.stderr
    assert "Traceback" not in proc.stderr
    subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    assert not list(tmpfs.iterdir())
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert json.loads((tmpfs / "run.json").read_text())["iterations"] == 12


def test_a_full_disk_fails_the_job_with_nothing_half_written_and_a_rerun_resumes(data, tmpfs, tmp_path):
    root, _ = data
    work = tmpfs / "work"
    cmd = command("finetune", root, tmpfs / "run.json", work, *FAST)
    # measure one checkpoint (the same job elsewhere), then leave room for the job's logs and
    # one checkpoint, but not a second: the save at iteration 8 fails half-way
    ref = command("finetune", root, tmp_path / "ref.json", tmp_path / "ref", *FAST, "--keep-checkpoints")
    assert subprocess.run(ref, capture_output=True).returncode == 0
    ckpt_size = (tmp_path / "ref" / "iter_12.pth").stat().st_size
    free = os.statvfs(tmpfs).f_bavail * os.statvfs(tmpfs).f_frsize
    filler = tmpfs / "filler"
    filler.write_bytes(b"\0" * (free - int(1.5 * ckpt_size) - 256 * 1024))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert re.search(rf"error: cannot write {work}/iter_\d+\.pth: No space left on device", proc.stderr), \
        proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    # nothing half-written: no output, no temporary file, and the last checkpoint is whole
    assert not (tmpfs / "run.json").exists() and not list(work.glob(".*"))
    step = checkpoint_step(work)
    assert step == 4 and sorted(p.name for p in work.glob("*.pth")) == ["iter_4.pth"]
    torch.load(work / "iter_4.pth", weights_only=False)

    filler.unlink()  # free the space: the rerun resumes and ends as an uninterrupted run
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert resumed_from(work) == [4]
    assert metrics(tmpfs / "run.json") == metrics(tmp_path / "ref.json")
