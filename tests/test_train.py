"""The training jobs through the real CLI, mmengine Runner and mmseg datasets (tiny preset)."""
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow
FAST = ["--iters", "12", "--checkpoint-interval", "4", "--batch-size", "4"]


def ddep(*args, check=True, **kw):
    proc = subprocess.run([sys.executable, "-m", "ddep.cli", *map(str, args)], capture_output=True,
                          text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"ddep {args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def ddep_inline(*args) -> subprocess.CompletedProcess:
    """`ddep ARGS` in this process, for commands that stop before or early in training: its exit
    code and what it prints, as `python -m ddep.cli` would give them (an uncaught exception
    prints its traceback, exit 1), without a new interpreter's ~6 s of imports."""
    from ddep.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse's usage errors
            code = e.code if isinstance(e.code, int) else 1
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(["ddep", *map(str, args)], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("builtin")
    ddep("generate-builtin", "--root", root, "--n-train", 24, "--n-val", 6, "--n-unlabelled", 24,
         "--n-source-train", 24, "--n-source-val", 8)
    split = root / "split_8.txt"
    ddep("split", "--dataset", "builtin", "--data-root", root, "--fraction", 8, "--out", split)
    return root, split


@pytest.fixture(scope="module")
def supervised(data, tmp_path_factory):
    root, _ = data
    out = tmp_path_factory.mktemp("sup") / "encoder.safetensors"
    ddep("pretrain-supervised", "--data-root", root, "--out", out,
         "--work-dir", out.parent / "work", *FAST)
    return out


def finetune(data, tmp, *extra, arm="none", name="run", check=True, seed=0, inline=False):
    """A fine-tune on the 8-image split (inline: in this process, for one that is refused)."""
    root, split = data
    args = ("finetune", "--arm", arm, "--dataset", "builtin", "--data-root", root,
            "--split", split, "--label-fraction", "8", "--seed", seed, "--out", tmp / f"{name}.json",
            "--work-dir", tmp / f"work_{name}", *FAST, *extra)
    return ddep_inline(*args) if inline else ddep(*args, check=check)


def metrics(path):
    r = json.loads(Path(path).read_text())
    return {k: r[k] for k in ("mIoU", "aAcc", "mAcc", "per_class_iou", "iterations", "n_labelled",
                              "config_hash")}


def test_supervised_encoder_is_saved_in_timm_format(supervised):
    from safetensors.torch import load_file
    keys = set(load_file(str(supervised)))
    assert "patch_embed.backbone.stem.conv.weight" in keys and "pos_embed" in keys
    report = json.loads(supervised.with_suffix(".json").read_text())
    assert 0 <= report["accuracy"] <= 1 and report["iterations"] == 12
    # a 24-way classifier of the source set (that it learns: tests/test_reproduce.py and
    # tests/test_analysis.py::test_the_committed_stand_in_learnt_the_source_classes)
    assert report["source_classes"] == 24 and report["chance"] == pytest.approx(1 / 24)
    assert report["source"].endswith("source/train")
    assert supervised.with_suffix(".py").is_file()  # its resolved config


def test_finetune_writes_the_run_json_and_is_deterministic(data, tmp_path):
    finetune(data, tmp_path, name="a")
    finetune(data, tmp_path, name="b")
    run = json.loads((tmp_path / "a.json").read_text())
    for key in ("dataset", "label_fraction", "n_labelled", "arm", "sigma", "seed", "mIoU", "aAcc",
                "mAcc", "per_class_iou", "iterations", "wall_time_s", "config_hash", "versions",
                "git_commit"):
        assert key in run, key
    assert run["n_labelled"] == 8 and run["iterations"] == 12 and run["arm"] == "none"
    assert len(run["per_class_iou"]) == 9
    assert (tmp_path / "a.py").is_file()  # its resolved config (tests/test_configs.py runs one)
    assert metrics(tmp_path / "a.json") == metrics(tmp_path / "b.json")
    assert not list((tmp_path / "work_a").glob("*.pth"))  # resume checkpoints go once done
    assert list((tmp_path / "work_a").rglob("*.log"))


def test_channels_last_reaches_the_finetune_and_its_saved_config(data, tmp_path):
    """The option is a job option (equivalence of the step: tests/test_models.py; a 12-step
    model's argmax is all near-ties, so its mIoU moves with any rounding)."""
    finetune(data, tmp_path, name="base")
    finetune(data, tmp_path, "--channels-last", name="cl")
    base, fast = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("base", "cl"))
    assert fast["iterations"] == base["iterations"] and 0 <= fast["mIoU"] <= 100
    assert fast["config_hash"] != base["config_hash"]
    assert "fast_path=dict(channels_last=True)" in (tmp_path / "cl.py").read_text()
    assert "fast_path" not in (tmp_path / "base.py").read_text()


def test_killed_finetune_resumes_and_matches_the_uninterrupted_run(data, tmp_path):
    root, split = data

    def command(name):
        return [sys.executable, "-m", "ddep.cli", "finetune", "--arm", "none", "--dataset", "builtin",
                "--data-root", str(root), "--split", str(split), "--label-fraction", "8",
                "--out", str(tmp_path / f"{name}.json"), "--work-dir", str(tmp_path / f"work_{name}"),
                "--iters", "40", "--checkpoint-interval", "4", "--batch-size", "4"]

    proc = subprocess.Popen(command("killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = tmp_path / "work_killed"
    deadline = time.time() + 300
    while not (work / "last_checkpoint").exists() or "iter_4." in (work / "last_checkpoint").read_text():
        assert proc.poll() is None, "job ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # a real kill -9, mid-training
    proc.wait()
    assert not (tmp_path / "killed.json").exists()
    killed_at = int((work / "last_checkpoint").read_text().strip().split("iter_")[-1][:-4])
    assert 4 < killed_at < 40
    resumed = subprocess.run(command("killed"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = "".join(p.read_text() for p in work.rglob("*.log"))
    assert f"Advance dataloader {killed_at} steps" in log  # resumed, not restarted
    subprocess.run(command("full"), check=True, capture_output=True)
    assert metrics(tmp_path / "killed.json") == metrics(tmp_path / "full.json")


def test_a_cells_seeds_in_one_process_are_the_runs_of_one_seed_jobs(data, supervised, tmp_path):
    """`ddep finetune --seed 0 1` (the workflow's `seeds_in_one_job`) trains each seed as a job of its
    own would: the same metrics, final loss and config, each seed's log in its own work dir; the
    resume checkpoints of a finished seed stay until the last seed is done, then go."""
    root, split = data
    for seed in (0, 1):
        (tmp_path / f"split_seed{seed}.txt").write_text(split.read_text())
    encoder = ("--arm", "21k", "--encoder-weights", supervised)  # a loaded encoder, as 21K and DDeP start
    common = ("finetune", *encoder, "--dataset", "builtin", "--data-root", root, "--label-fraction", "8", *FAST)
    for seed in (0, 1):
        ddep(*common, "--split", tmp_path / f"split_seed{seed}.txt", "--seed", seed,
             "--out", tmp_path / f"alone{seed}.json", "--work-dir", tmp_path / f"alone{seed}")
    proc = ddep(*common, "--split", tmp_path / "split_seed{seed}.txt", "--seed", 0, 1,
                "--out", tmp_path / "cell{seed}.json", "--work-dir", tmp_path / "cell{seed}")
    for seed in (0, 1):
        alone, cell = (json.loads((tmp_path / f"{kind}{seed}.json").read_text()) for kind in ("alone", "cell"))
        assert metrics(tmp_path / f"cell{seed}.json") == metrics(tmp_path / f"alone{seed}.json")
        assert cell["seed"] == seed and cell["training"] == alone["training"]
        assert not list((tmp_path / f"cell{seed}").glob("*.pth"))  # dropped once both were done
        log = "".join(p.read_text() for p in (tmp_path / f"cell{seed}").rglob("*.log"))
        assert f"seed: {seed}\n" in log and f"seed: {1 - seed}\n" not in log
    assert [line.split(":")[0][-6:] for line in proc.stdout.splitlines() if " images) seed " in line] == \
        ["seed 0", "seed 1"]
    # a killed cell job's rerun: a finished seed is evaluated from its last checkpoint, not retrained
    ddep(*common, "--split", tmp_path / "split_seed{seed}.txt", "--seed", 0, 1, "--keep-checkpoints",
         "--out", tmp_path / "kept{seed}.json", "--work-dir", tmp_path / "kept{seed}")
    (tmp_path / "kept0.json").unlink()
    ddep(*common, "--split", tmp_path / "split_seed0.txt", "--seed", 0,
         "--out", tmp_path / "kept0.json", "--work-dir", tmp_path / "kept0")
    assert metrics(tmp_path / "kept0.json") == metrics(tmp_path / "alone0.json")
    log = "".join(p.read_text() for p in (tmp_path / "kept0").rglob("*.log"))
    assert "Auto resumed from the latest checkpoint" in log and f"iter_{FAST[1]}.pth" in log
    refused = ddep(*common, "--split", split, "--seed", 0, 1, "--out", tmp_path / "x.json",
                   "--work-dir", tmp_path / "x{seed}", check=False)
    assert refused.returncode == 2 and "--split, --out" in refused.stderr and "{seed}" in refused.stderr


def test_ddep_keeps_the_supervised_encoder_and_finetune_loads_all_but_the_projection(
        data, supervised, tmp_path):
    from safetensors.torch import load_file
    root, _ = data
    out = tmp_path / "ddep.pth"
    # as the default run pretrains it: on the source images, at their own 64 x 64
    ddep("pretrain-denoise", "--arm", "ddep", "--dataset", "builtin", "--data-root", root,
         "--unlabelled", root / "source/train", "--image-crop", 64, 64,
         "--sigma", "0.2", "0.4", "--encoder-weights", supervised, "--out", out,
         "--work-dir", tmp_path / "work_ddep", *FAST)
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["meta"]["arm"] == "ddep" and ckpt["meta"]["sigma"] == "U(0.2,0.4)"
    assert ckpt["meta"]["unlabelled"] == str(root / "source/train")  # where its decoder learnt
    state, encoder = ckpt["state_dict"], load_file(str(supervised))
    assert all(torch.equal(state[f"backbone.vit.{k}"], v) for k, v in encoder.items())
    assert not any("optimizer" in k for k in ckpt)  # weights only
    assert "DenoisingPretrainer" in out.with_suffix(".py").read_text()  # its resolved config

    finetune(data, tmp_path, "--init-from", out, arm="ddep", name="ft")
    run = json.loads((tmp_path / "ft.json").read_text())
    assert run["arm"] == "ddep" and run["sigma"] == "U(0.2,0.4)"
    log = "".join(p.read_text() for p in (tmp_path / "work_ft").rglob("*.log"))
    line = next(l for l in log.splitlines() if "initialised from" in l)
    n_loaded = sum(1 for k in state if not k.startswith("decode_head.conv_seg."))
    assert f"loaded {n_loaded} tensors; skipped 2 (decode_head.conv_seg)" in line
    assert "missing 2 (decode_head.conv_seg)" in line


def test_dep_pretraining_and_21k_finetune(data, supervised, tmp_path):
    root, _ = data
    out = tmp_path / "dep.pth"
    ddep("pretrain-denoise", "--arm", "dep", "--dataset", "builtin", "--data-root", root,
         "--formulation", "scaled", "--target", "x", "--out", out, "--work-dir", tmp_path / "w", *FAST)
    meta = torch.load(out, weights_only=True)["meta"]
    assert (meta["arm"], meta["sigma"], meta["formulation"], meta["target"]) == ("dep", "0.2", "scaled", "x")
    finetune(data, tmp_path, "--encoder-weights", supervised, arm="21k", name="sup")
    assert json.loads((tmp_path / "sup.json").read_text())["arm"] == "21k"


def test_nan_loss_stops_the_job_without_metrics(data, tmp_path):
    proc = finetune(data, tmp_path, "--lr", "1e30", name="nan", check=False)
    assert proc.returncode == 1
    assert "loss is nan" in proc.stderr or "loss is inf" in proc.stderr
    assert not (tmp_path / "nan.json").exists()


@pytest.mark.parametrize("args, message", [
    (["--arm", "ddep", "--sigma", "0.3", "0.2"], "a <= b"),
    (["--arm", "ddep"], "needs a supervised encoder|--encoder-weights"),
    (["--arm", "dep", "--encoder-weights", "x.safetensors"], "drop --encoder-weights"),
])
def test_bad_denoise_arguments_give_one_clear_error(data, tmp_path, args, message):
    import re
    root, _ = data
    proc = ddep_inline("pretrain-denoise", "--dataset", "builtin", "--data-root", root, *args,
                       "--out", tmp_path / "x.pth", "--work-dir", tmp_path / "w")
    assert proc.returncode == 2
    assert re.search(message, proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_finetune_arguments_give_one_clear_error(data, tmp_path):
    proc = finetune(data, tmp_path, arm="ddep", name="x", inline=True)
    assert proc.returncode == 2 and "needs --init-from" in proc.stderr
    proc = finetune(data, tmp_path, "--init-from", tmp_path / "missing.pth", arm="dep", name="x", inline=True)
    assert proc.returncode == 2 and "missing.pth" in proc.stderr
    proc = ddep("finetune", "--arm", "ddep_s0.2", check=False)  # a new interpreter: the real exit code
    assert proc.returncode == 2 and "argument --arm" in proc.stderr and "no _" in proc.stderr


# --- mmseg's own models ----------------------------------------------------------------------

from conftest import CONVNEXT, HAS_MMPRETRAIN, MMSEG_MODELS  # noqa: E402

# ConvNeXt-T UPerNet: a backbone of mmpretrain, ddep's optional extra (CI installs it)
WITH_MMPRETRAIN = pytest.param(CONVNEXT, marks=pytest.mark.skipif(
    not HAS_MMPRETRAIN, reason="mmpretrain not installed (DDEP_EXTRAS=mmpretrain bash install.sh)"))


@pytest.mark.parametrize("model", [*MMSEG_MODELS, WITH_MMPRETRAIN])
def test_an_mmseg_model_runs_every_arm(data, tmp_path, model):
    """The model's own backbone as the supervised stand-in, DDeP on it (frozen bit for bit,
    BatchNorm statistics too), DeP, and fine-tuning from each with the transfer reported; a
    checkpoint of another model is refused with one message."""
    from safetensors.torch import load_file
    root, _ = data
    m = ["--model", model, "--model-name", "mine", "--iters", "4", "--batch-size", "2"]
    sup = tmp_path / "sup.safetensors"
    ddep("pretrain-supervised", "--data-root", root, "--out", sup, "--work-dir", tmp_path / "ws",
         *FAST, *m)
    assert json.loads(sup.with_suffix(".json").read_text())["model"] == "mine"
    out = tmp_path / "ddep.pth"
    ddep("pretrain-denoise", "--arm", "ddep", "--dataset", "builtin", "--data-root", root,
         "--unlabelled", root / "source/train", "--image-crop", 64, 64, "--encoder-weights", sup,
         "--out", out, "--work-dir", tmp_path / "wd", *FAST, *m)
    state, encoder = torch.load(out, weights_only=True)["state_dict"], load_file(str(sup))
    assert encoder and all(torch.equal(state[f"backbone.{k}"], v) for k, v in encoder.items())
    ddep("pretrain-denoise", "--arm", "dep", "--dataset", "builtin", "--data-root", root,
         "--out", tmp_path / "dep.pth", "--work-dir", tmp_path / "wp", *FAST, *m)
    for arm, ckpt in (("ddep", out), ("dep", tmp_path / "dep.pth")):
        finetune(data, tmp_path, "--init-from", ckpt, *m, arm=arm, name=f"ft_{arm}")
        run = json.loads((tmp_path / f"ft_{arm}.json").read_text())
        assert (run["arm"], run["model"], run["model_config"]) == (arm, "mine", model)
        log = "".join(p.read_text() for p in (tmp_path / f"work_ft_{arm}").rglob("*.log"))
        line = next(l for l in log.splitlines() if "initialised from" in l)
        n_loaded = sum(1 for k in state if not k.startswith("decode_head.conv_seg."))
        assert f"loaded {n_loaded} tensors; skipped 2 (decode_head.conv_seg)" in line
    finetune(data, tmp_path, "--encoder-weights", sup, *m, arm="21k", name="ft_21k")
    # the TransUNet's checkpoint is refused before training, in one message
    proc = finetune(data, tmp_path, "--init-from", out, arm="ddep", name="x", inline=True)
    assert proc.returncode == 2 and "was pretrained with model 'mine', but this fine-tune builds " \
        "model 'transunet_tiny'" in proc.stderr and "Traceback" not in proc.stderr
