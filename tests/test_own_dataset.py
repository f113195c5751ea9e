"""A dataset of the user's own, from the sweep config alone: a small abdominal CT set in mmseg's
img_dir/ann_dir layout (512 x 512 greyscale slices, its own classes, 255 outside the scanner's
field of view), through the whole DAG; and bad entries, each stopped with one line before any
job (docs/datasets.md)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ddep.preflight import find_problems
from ddep.sweep_config import load_config

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["background", "liver", "kidney", "spleen"]
SIZE = 512  # the slices' height and width


def ct_slice(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One 512 x 512 axial slice (uint8 greyscale, soft tissue about 100-160) and its label map:
    a body ellipse with a liver, two kidneys and a spleen; outside the circular field of view
    the scanner has no data (label 255, ignored)."""
    y, x = np.mgrid[:SIZE, :SIZE] / SIZE
    cy, cx = 0.5 + rng.uniform(-0.03, 0.03, 2)
    label = np.zeros((SIZE, SIZE), np.uint8)
    image = np.full((SIZE, SIZE), 10.0)  # air
    body = ((x - cx) / 0.42) ** 2 + ((y - cy) / 0.32) ** 2 < 1
    image[body] = 95
    organs = [(1, cx - 0.15, cy - 0.05, 0.14, 0.12, 135), (2, cx - 0.12, cy + 0.14, 0.05, 0.06, 150),
              (2, cx + 0.12, cy + 0.14, 0.05, 0.06, 150), (3, cx + 0.2, cy - 0.06, 0.06, 0.08, 125)]
    for value, ox, oy, rx, ry, grey in organs:
        s = rng.uniform(0.8, 1.2)
        inside = ((x - ox) / (rx * s)) ** 2 + ((y - oy) / (ry * s)) ** 2 < 1
        image[inside] = grey
        label[inside] = value
    outside = (x - 0.5) ** 2 + (y - 0.5) ** 2 > 0.5 ** 2  # the field of view's corners
    label[outside] = 255
    image[outside] = 0
    image += rng.normal(0, 8, image.shape)  # CT noise
    return np.clip(image, 0, 255).astype(np.uint8), label


def write_ct(root: Path, n_train: int = 6, n_val: int = 2) -> Path:
    """img_dir/{train,val}/caseNNNN_sliceNNN.png (greyscale) and ann_dir/... (label PNGs)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for d in ("img_dir", "ann_dir"):
            (root / d / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            name = f"case{i // 2 + (0 if split == 'train' else 50):04d}_slice{40 + 7 * (i % 2):03d}.png"
            image, label = ct_slice(rng)
            Image.fromarray(image, mode="L").save(root / "img_dir" / split / name)
            Image.fromarray(label, mode="L").save(root / "ann_dir" / split / name)
    return root


def write_encoder(path: Path) -> Path:
    """A supervised encoder the user brings (here: the tiny TransUNet's backbone, as its 21K
    and DDeP arms load one), saved as ddep's stand-in saves its own."""
    from mmseg.registry import MODELS

    from ddep.configs import segmentor_cfg
    from ddep.models.weights import encoder_state_dict, save_atomic
    model = MODELS.build(segmentor_cfg("tiny", len(CLASSES), (SIZE, SIZE)))
    save_atomic(encoder_state_dict(model.backbone), path)
    return path


def entry(root: Path, **changes) -> dict:
    """The CT set's sweep entry, as docs/datasets.md writes it."""
    d = dict(root=str(root), type="BaseSegDataset", img_suffix=".png", seg_map_suffix=".png",
             classes=CLASSES, palette=[[0, 0, 0], [220, 20, 60], [0, 160, 0], [60, 60, 220]],
             ignore_index=255, schedules="builtin", fractions=["1/2"],
             unlabelled={"dep": None, "ddep": None})
    d.update(changes)
    return d


def sweep(root: Path, weights: str | None = None, **changes) -> dict:
    cfg = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    cfg.update(models=["tiny"], ablations=[],
               datasets={"abdomen_ct": entry(root, encoder_weights=weights, **changes)},
               schedule={stage: {"iters": 4, "batch_size": 2, "checkpoint_interval": 2}
                         for stage in ("supervised", "denoise", "finetune")})
    return cfg


def validated(cfg: dict, tmp_path: Path) -> dict:
    """The config as Snakemake sees it: through the workflow's schema."""
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config([str(path)])


def test_a_ct_dataset_runs_the_smoke_grid_through_the_whole_dag_from_config_alone(tmp_path):
    for name in ("workflow", "config"):
        shutil.copytree(REPO / name, tmp_path / name)
    write_ct(tmp_path / "data/abdomen_ct")
    write_encoder(tmp_path / "weights/ct_encoder.safetensors")
    cfg = sweep(Path("data/abdomen_ct"), "weights/ct_encoder.safetensors")
    (tmp_path / "config/own.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile",
                           "config/own.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    runs = sorted((tmp_path / "resources/runs/abdomen_ct/transunet_tiny/1_2").rglob("seed0.json"))
    assert [p.parent.name for p in runs] == ["21k", "ddep_s0.2", "dep_s0.2", "none"]
    for path in runs:
        run = json.loads(path.read_text())
        assert run["dataset"] == "abdomen_ct" and run["n_labelled"] == 3
        assert sorted(run["per_class_iou"]) == sorted(CLASSES)  # its own classes
        assert 0 <= run["mIoU"] <= 100
    import pandas as pd
    table = pd.read_csv(tmp_path / "results/runs.csv")
    assert set(table.dataset) == {"abdomen_ct"} and len(table) == 4
    assert (tmp_path / "results/tables/abdomen_ct_label_efficiency.md").stat().st_size > 0
    # the job's config names the entry's classes and reads greyscale slices as mmseg does
    saved = (tmp_path / "resources/runs/abdomen_ct/transunet_tiny/1_2/none/seed0.py").read_text()
    assert "'liver'" in saved and "num_classes=4" in saved


def test_the_ct_entry_passes_the_checks(tmp_path):
    write_ct(tmp_path / "ct")
    weights = write_encoder(tmp_path / "enc.safetensors")
    assert find_problems(validated(sweep(tmp_path / "ct", str(weights)), tmp_path)) == []


def test_labels_beyond_the_classes_are_one_line(tmp_path):
    root = write_ct(tmp_path / "ct")
    bad = root / "ann_dir/val/case0050_slice040.png"
    label = np.asarray(Image.open(bad)).copy()
    label[200:210, 200:210] = 7  # a class the entry does not list
    Image.fromarray(label).save(bad)
    weights = write_encoder(tmp_path / "enc.safetensors")
    problems = find_problems(validated(sweep(root, str(weights)), tmp_path), models=True)
    assert problems == [f"datasets.abdomen_ct.root: label map {bad} has values 7 outside the "
                        f"dataset's 4 classes (0..3) and its ignore index 255: fix the labels, "
                        f"or the entry's `classes:` / `ignore_index:`"], problems
    # with 0 ignored instead, every map's 255 (outside the field of view) is out of range
    problems = find_problems(validated(sweep(root, str(weights), ignore_index=0), tmp_path), models=True)
    assert len(problems) == 1 and "/ann_dir/train/" in problems[0], problems
    assert "has values 255 outside the dataset's 4 classes (0..3) and its ignore index 0" in problems[0]


def test_an_entry_without_a_config_is_one_line(tmp_path):
    write_ct(tmp_path / "ct")
    cfg = sweep(tmp_path / "ct")
    d = cfg["datasets"]["abdomen_ct"]
    for key in ("type", "img_suffix", "seg_map_suffix", "classes", "palette", "ignore_index", "schedules"):
        d.pop(key)
    assert find_problems(validated(cfg, tmp_path)) == [
        "datasets.abdomen_ct: no dataset config: add `config:` (an mmseg dataset config, e.g. "
        "mmseg::_base_/datasets/synapse.py or my_dataset.py) or `type:` (an mmseg dataset class, "
        "e.g. BaseSegDataset) with its `classes:` (docs/datasets.md); without either an entry must "
        "be named after one of ddep's datasets ['ade20k', 'builtin', 'cityscapes', 'pascal_context59']"]
    d.update(classes=CLASSES)  # classes but neither config nor type
    problems = find_problems(validated(cfg, tmp_path))
    assert problems == ["datasets.abdomen_ct: sets ['classes'] but no dataset config: add `config:` "
                        "(an mmseg dataset config) or `type:` with its paths (docs/datasets.md)"]


def test_images_and_labels_that_do_not_pair_up_are_one_line_with_both_counts(tmp_path):
    root = write_ct(tmp_path / "ct")
    (root / "ann_dir/train/case0001_slice040.png").unlink()
    weights = write_encoder(tmp_path / "enc.safetensors")
    problems = find_problems(validated(sweep(root, str(weights)), tmp_path))
    assert problems == [
        f"datasets.abdomen_ct.root: the train split's 6 images (*.png under {root}/img_dir/train) "
        f"and 5 label maps (*.png under {root}/ann_dir/train) do not pair up: "
        f"{root}/img_dir/train/case0001_slice040.png has no label map "
        f"{root}/ann_dir/train/case0001_slice040.png"], problems


def test_a_fraction_that_leaves_fewer_images_than_it_asks_for_is_one_line(tmp_path):
    root = write_ct(tmp_path / "ct")
    weights = write_encoder(tmp_path / "enc.safetensors")
    problems = find_problems(validated(sweep(root, str(weights), fractions=["10"]), tmp_path))
    assert problems == [f"datasets.abdomen_ct.fractions: '10' of the 6 train images under {root}: "
                        f"asked for 10 labelled images but only 6 exist"], problems


def test_an_mmseg_dataset_config_with_classes_from_its_class(tmp_path):
    """`config:` mmseg's Synapse file and `classes: from_dataset`: its 9 classes, its layout."""
    from ddep.configs import dataset_config
    from ddep.data.table import dataset_def
    own = dict(config="mmseg::_base_/datasets/synapse.py", classes="from_dataset")
    d = dataset_def("synapse", own)
    assert (d.type, d.splits["train"].img_path, d.splits["val"].seg_map_path) == \
        ("SynapseDataset", "img_dir/train", "ann_dir/val")
    cfg = dataset_config("synapse", own)
    assert cfg.num_classes == 9 and cfg.dataset_name == "synapse"
    assert cfg.val_evaluator.type == "PerClassIoUMetric"


def test_ddeps_own_datasets_are_entries_of_the_same_kind(tmp_path):
    """Naming ddep's dataset under `config:` gives its layout under another name."""
    from ddep.data.table import DATASET_DEFS, dataset_def
    for name, known in DATASET_DEFS.items():
        d = dataset_def("mine", dict(config=name))
        assert (d.type, d.splits, d.img_suffix, d.seg_map_suffix) == \
            (known.type, known.splits, known.img_suffix, known.seg_map_suffix)
        assert dataset_def(name, dict(root="x", fractions=["1"])) is known
