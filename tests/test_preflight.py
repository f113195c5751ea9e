"""The preflight: every problem of a sweep config is found before any job runs, one message each,
naming the config key and the path and saying how to fix it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import CONVNEXT

from ddep.preflight import find_problems
from fake_data import fake_paper_inputs

REPO = Path(__file__).resolve().parents[1]


def paper_config(tmp_path: Path) -> dict:
    return fake_paper_inputs(yaml.safe_load((REPO / "config/paper.yaml").read_text()), tmp_path)


# Python code that makes the package %r not found, as if it were not installed: the path finder
# (which finds what pip installs) answers nothing for it.
HIDE = """
import importlib.machinery as m
class Hidden(m.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.split('.')[0] == %r else super().find_spec(name, path, target)
sys.meta_path[:] = [Hidden if f is m.PathFinder else f for f in sys.meta_path]
"""


def ddep_check(tmp_path: Path, cfg: dict, without: str = "") -> subprocess.CompletedProcess:
    """`ddep check` of ``cfg`` in a new Python; ``without``: a package it cannot import."""
    path = tmp_path / "check.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = "\n".join(["import sys", HIDE % without if without else "",
                     "from ddep.cli import main", "sys.exit(main(sys.argv[1:]))"])
    # an empty Hugging Face cache; no model check's training steps: the paper's R50-ViT-B/16
    # takes 30-160 s a step on a CPU at its crops (tests/test_model_check.py tests the check)
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), DDEP_MODEL_CHECK="skip")
    return subprocess.run([sys.executable, "-c", run, "check", "--configfile", str(path)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_fake_paper_inputs_pass(tmp_path):
    cfg = paper_config(tmp_path)
    assert find_problems(cfg) == []
    proc = ddep_check(tmp_path, cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok: ") and "3 dataset(s)" in proc.stdout


def test_every_file_system_problem_is_listed_with_its_key_and_path(tmp_path):
    cfg = paper_config(tmp_path)
    city, ade, pc = (cfg["datasets"][k] for k in ("cityscapes", "ade20k", "pascal_context59"))
    shutil.rmtree(Path(city["root"]) / "gtFine")                  # malformed dataset root
    ade["fractions"] = ["1/16", "500"]                             # more images than exist
    empty = tmp_path / "empty_imagenet"
    (empty / "n01440764").mkdir(parents=True)
    pc["unlabelled"] = {"dep": None, "ddep": str(empty)}           # no images in the tree
    pc["encoder_weights"] = str(tmp_path / "missing.safetensors")  # weights file not there
    problems = find_problems(cfg)
    assert len(problems) == 4, problems
    by_key = {p.split(":")[0]: p for p in problems}
    city_msg = by_key["datasets.cityscapes.root"]
    assert str(Path(city["root"]) / "gtFine" / "train") in city_msg
    assert "expected layout" in city_msg and "cityscapes.py" in city_msg
    ade_msg = by_key["datasets.ade20k.fractions"]
    assert "'500'" in ade_msg and "4 train images" in ade_msg
    assert str(empty) in by_key["datasets.pascal_context59.unlabelled (ddep)"]
    weights_msg = by_key["datasets.pascal_context59.encoder_weights (for arms ['21k', 'ddep'])"]
    assert "missing.safetensors" in weights_msg


def test_check_reports_weights_not_in_cache_a_crop_that_cannot_run_and_bad_noise(tmp_path):
    cfg = paper_config(tmp_path)
    cfg["datasets"]["ade20k"]["encoder_weights"] = "vit_base_r50_s16_224.orig_in21k"
    cfg["datasets"]["cityscapes"]["crop_size"] = [500, 1000]       # not multiples of 16
    cfg["ablations"][0]["sigma"] = [0.2, [0.5, 0.1], float("nan")]  # an interval [b, a]; NaN
    cfg["ablations"][1]["datasets"] = ["cityscape"]                   # a typo
    proc = ddep_check(tmp_path, cfg)
    assert proc.returncode == 2
    err = proc.stderr
    assert "5 problem(s) found before any job ran" in err, err[-3000:]
    assert "ablations[1].datasets: 'cityscape' is not one of datasets" in err
    assert "datasets.cityscapes.crop_size: [500, 1000] cannot run" in err and "[496, 992]" in err
    assert "datasets.ade20k.encoder_weights" in err and "not in the local Hugging Face cache" in err
    assert "hf download timm/vit_base_r50_s16_224.orig_in21k" in err
    assert "sigma U(0.5,0.1)" in err and "0 <= a <= b" in err
    assert "sigma nan" in err and "finite number" in err
    assert "Traceback" not in err


def test_a_dry_run_already_stops_on_a_missing_dataset(tmp_path):
    for name in ("workflow", "config"):
        shutil.copytree(REPO / name, tmp_path / name)
    cfg = paper_config(tmp_path)
    cfg["datasets"]["ade20k"]["root"] = str(tmp_path / "data" / "nowhere")
    (tmp_path / "config/paper.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile",
                           "config/paper.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "1 problem(s) found before any job ran" in out, out[-3000:]
    assert f"datasets.ade20k.root: ade20k: data root does not exist: {tmp_path}/data/nowhere" in out
    assert "ADEChallengeData2016" in out  # how to prepare it


def test_fraction_seeds_must_name_a_listed_fraction():
    """A `fraction_seeds` key that is not one of the dataset's fractions would be ignored
    silently (that fraction then runs with the top-level seeds): the preflight names it."""
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    cfg["seeds_in_one_job"] = False  # which needs every cell on `seeds` (the next test)
    builtin = cfg["datasets"]["builtin"]
    builtin["fraction_seeds"] = {builtin["fractions"][-1]: [0]}
    assert find_problems(cfg) == []
    builtin["fraction_seeds"] = {"1000": [0]}
    problems = find_problems(cfg)
    assert len(problems) == 1 and problems[0].startswith("datasets.builtin.fraction_seeds:")
    assert "'1000'" in problems[0]


def test_seeds_in_one_job_needs_every_cell_on_the_top_level_seeds():
    """A job of a cell's seeds is planned for `seeds`: a fraction or ablation on others is named before any job."""
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    assert cfg["seeds_in_one_job"] and find_problems(cfg) == []
    builtin = cfg["datasets"]["builtin"]
    builtin["fraction_seeds"] = {builtin["fractions"][-1]: [70, 71]}
    problems = find_problems(cfg)
    assert len(problems) == 1 and problems[0].startswith("seeds_in_one_job: the cells builtin 1/1 ")
    assert "seeds_in_one_job: false" in problems[0]


def test_models_are_checked_before_any_job_runs(tmp_path):
    """An unknown model and a model without encoder weights on a paper dataset are listed
    with their keys; a model's own encoder_weights must exist."""
    cfg = paper_config(tmp_path)
    segformer = "mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py"
    cfg["models"] = ["nope", {"config": segformer, "name": "seg", "encoder_weights": str(tmp_path / "mit.pth")}]
    problems = find_problems(cfg, models=True)
    assert any(p.startswith("models[0]: unknown model 'nope'") for p in problems), problems
    assert any(p.startswith("models (seg).encoder_weights") and "mit.pth" in p for p in problems), problems


def test_a_model_whose_custom_imports_fail_names_the_package_in_one_line(tmp_path):
    """A model config importing a package that is not installed (mmseg's ConvNeXt configs
    import mmpretrain) is one problem naming the package and how to install it."""
    model = tmp_path / "needs_pkg.py"
    model.write_text("_base_ = ['mmseg::_base_/models/upernet_r50.py']\n"
                     "custom_imports = dict(imports=['ddep_absent_pkg.models'], allow_failed_imports=False)\n")
    cfg = paper_config(tmp_path)
    cfg["models"] = [str(model)]
    problems = find_problems(cfg, models=True)
    assert problems == [f"models[0]: model config {model} needs the package ddep_absent_pkg (its "
                        f"custom_imports), which is not installed: pip install ddep_absent_pkg"], problems


def test_ddep_check_without_mmpretrain_gives_its_pinned_install_line(tmp_path):
    """Run where mmpretrain cannot be imported, installed or not (CI installs it): the check
    runs in a Python whose sys.modules blocks it, as an absent package is blocked."""
    cfg = paper_config(tmp_path)
    cfg["models"] = [{"name": "convnext_t", "config": CONVNEXT}]
    proc = ddep_check(tmp_path, cfg, without="mmpretrain")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = next(l for l in proc.stderr.splitlines() if "mmpretrain" in l)
    assert line.strip() == (
        f"- models[0]: model config {CONVNEXT} needs the package mmpretrain (its custom_imports), "
        f"which is not installed: pip install 'mmpretrain==1.2.0' (ddep's "
        f"pinned extra; or DDEP_EXTRAS=mmpretrain bash install.sh)"), line
