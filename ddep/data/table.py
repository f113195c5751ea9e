"""The one table of supported datasets: MMSeg type, on-disk layout and how to prepare them, plus
the checks built from it. Their configs (pipelines, crop size, classes) are the files
``ddep/configs/_base_/datasets/{name}.py``.

No torch, no mmseg: the workflow's preflight imports it while Snakemake parses the Snakefile (and
reads the configs through mmengine's Config, which imports neither). The MMSeg dataset classes live
in :mod:`ddep.data.datasets`.
"""

from __future__ import annotations

import functools
import os
import warnings
import os.path as osp
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class DatasetNotFoundError(ValueError):
    """A dataset root or one of its required folders/files is missing or empty."""


@dataclass(frozen=True)
class SplitDef:
    img_path: str
    seg_map_path: str
    ann_file: str | None = None  # relative to the data root; None: list the image folder


@dataclass(frozen=True)
class DatasetDef:
    """One dataset: MMSeg type and layout, as the layout checks need them."""

    type: str
    img_suffix: str
    seg_map_suffix: str
    reduce_zero_label: bool
    splits: dict[str, SplitDef]
    prepare: str = ""
    layout: tuple[str, ...] = field(default_factory=tuple)
    # Images in the official release's train split: what a label fraction is taken of when the
    # data is not on disk (the cost estimate); None where the config decides (built-in).
    train_images: int | None = None


# mmseg's dataset converters as an installed mmseg ships them (its package folder's .mim/tools);
# tests/test_paper_datasets.py checks that every converter named in the docs and here exists.
CONVERTERS = "$(python -c 'import mmseg, os; print(os.path.dirname(mmseg.__file__))')/.mim/tools/dataset_converters"
# Pascal Context's converter imports the Detail API, which is not on PyPI (the PyPI package `detail` is another).
DETAIL_API = "pip install 'git+https://github.com/zhanghang1989/detail-api.git#subdirectory=PythonAPI'"

# The one table of dataset layouts (as mmseg's configs/_base_/datasets/*.py lay them out).
DATASET_DEFS: dict[str, DatasetDef] = {
    "cityscapes": DatasetDef(
        type="CityscapesDataset", img_suffix="_leftImg8bit.png",
        seg_map_suffix="_gtFine_labelTrainIds.png", reduce_zero_label=False,
        splits={"train": SplitDef("leftImg8bit/train", "gtFine/train"),
                "val": SplitDef("leftImg8bit/val", "gtFine/val")},
        prepare="download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from "
                "cityscapes-dataset.com, unzip both into the root, then create the "
                "*_labelTrainIds.png maps with mmseg's converter (extra `converters`): "
                f"`python {CONVERTERS}/cityscapes.py ROOT --nproc 8`",
        layout=("leftImg8bit/{train,val}/CITY/CITY_xxxxxx_yyyyyy_leftImg8bit.png",
                "gtFine/{train,val}/CITY/CITY_xxxxxx_yyyyyy_gtFine_labelTrainIds.png"),
        train_images=2975),
    "ade20k": DatasetDef(
        type="ADE20KDataset", img_suffix=".jpg", seg_map_suffix=".png",
        reduce_zero_label=True,
        splits={"train": SplitDef("images/training", "annotations/training"),
                "val": SplitDef("images/validation", "annotations/validation")},
        prepare="download ADEChallengeData2016.zip (MIT Scene Parsing benchmark) and unzip it; "
                "ROOT is the ADEChallengeData2016 folder",
        layout=("images/{training,validation}/ADE_*_xxxxxxxx.jpg",
                "annotations/{training,validation}/ADE_*_xxxxxxxx.png"),
        train_images=20210),
    "pascal_context59": DatasetDef(
        type="PascalContextDataset59", img_suffix=".jpg", seg_map_suffix=".png",
        reduce_zero_label=True,
        splits={"train": SplitDef("JPEGImages", "SegmentationClassContext",
                                  "ImageSets/SegmentationContext/train.txt"),
                "val": SplitDef("JPEGImages", "SegmentationClassContext",
                                "ImageSets/SegmentationContext/val.txt")},
        prepare="download VOCtrainval_03-May-2010.tar and trainval_merged.json, install the "
                f"Detail API ({DETAIL_API}), then run mmseg's `python {CONVERTERS}/pascal_context.py "
                "data/VOCdevkit data/VOCdevkit/VOC2010/trainval_merged.json`; ROOT is "
                "VOCdevkit/VOC2010",
        layout=("JPEGImages/YYYY_xxxxxx.jpg", "SegmentationClassContext/YYYY_xxxxxx.png",
                "ImageSets/SegmentationContext/{train,val}.txt"),
        train_images=4996),
    "builtin": DatasetDef(
        type="BuiltinStreetDataset", img_suffix=".png", seg_map_suffix=".png", reduce_zero_label=False,
        # dev: the development split the tuning stage evaluates on (scenes of their own seed)
        splits={"train": SplitDef("img_dir/train", "ann_dir/train"),
                "val": SplitDef("img_dir/val", "ann_dir/val"),
                "dev": SplitDef("img_dir/dev", "ann_dir/dev")},
        prepare="generate it: `python -c \"from ddep.data import generate_builtin; "
                "generate_builtin('ROOT')\"`",
        layout=("img_dir/{train,val,dev,unlabelled}/NNNNNN.png", "ann_dir/{train,val,dev}/NNNNNN.png",
                "meta.json")),
}


def get_dataset_def(name: str) -> DatasetDef:
    """The table entry for ``name`` (ValueError listing the known names otherwise)."""
    try:
        return DATASET_DEFS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASET_DEFS)}") from None


DATASET_CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "_base_" / "datasets"


def config_literal(name: str, key: str) -> Any:
    """The value of ``key`` (e.g. ``crop_size``, ``num_classes``) in the dataset's config file
    ``ddep/configs/_base_/datasets/{name}.py``, or in its ``mmseg::`` bases where it leaves it
    to them, as mmengine resolves them."""
    get_dataset_def(name)
    config = _dataset_config(name)
    if key not in config:
        raise KeyError(f"{config.filename} sets no {key!r} (nor do its _base_ files): add `{key} = ...`")
    return config[key]


@functools.cache
def _dataset_config(name: str):  # -> mmengine.Config, imported here: importing this module stays light
    with warnings.catch_warnings():  # else every Snakemake start shows mmengine's use of pkg_resources
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        from mmengine.config import Config
        return Config.fromfile(DATASET_CONFIGS / f"{name}.py", import_custom_modules=False)


def find_images(folder: str | os.PathLike) -> Iterator[str]:
    """Paths of the png/jpg/jpeg images (any case, e.g. ImageNet's ``.JPEG``) under ``folder``,
    recursively, in file-system order."""
    for dirpath, _, files in os.walk(folder, followlinks=True):
        for f in files:
            if f.lower().endswith(IMAGE_SUFFIXES):
                yield osp.join(dirpath, f)


def _has_file(folder: Path, suffix: str) -> bool:
    for _, _, files in os.walk(folder, followlinks=True):
        if any(f.endswith(suffix) for f in files):
            return True
    return False


def check_dataset(name: str, data_root: str | os.PathLike,
                  splits: tuple[str, ...] = ("train", "val")) -> None:
    """Raise ``DatasetNotFoundError`` naming the first missing/empty path of the dataset."""
    d = get_dataset_def(name)
    root = Path(data_root)

    def fail(path: Path, what: str) -> None:
        layout = "\n".join(f"  {root}/{line}" for line in d.layout)
        raise DatasetNotFoundError(
            f"{name}: {what}: {path}\nexpected layout:\n{layout}\nto prepare it: {d.prepare}")

    if not root.is_dir():
        fail(root, "data root does not exist")
    for split in splits:
        s = d.splits[split]
        if s.ann_file and not (root / s.ann_file).is_file():
            fail(root / s.ann_file, f"{split} image list is missing")
        for sub, suffix, kind in ((s.img_path, d.img_suffix, "images"),
                                  (s.seg_map_path, d.seg_map_suffix, "label maps")):
            folder = root / sub
            if not folder.is_dir():
                fail(folder, f"{split} {kind} folder is missing")
            if not _has_file(folder, suffix):
                fail(folder, f"{split} {kind} folder has no *{suffix} files")


def split_sha256(name: str, data_root: str | os.PathLike, split: str) -> str:
    """SHA-256 over one split's files (relative names and bytes, images then label maps): what
    the tuning stage's selection records of the development split it was chosen on."""
    import hashlib
    d = get_dataset_def(name)
    digest = hashlib.sha256()
    for sub in (d.splits[split].img_path, d.splits[split].seg_map_path):
        folder = Path(data_root) / sub
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
