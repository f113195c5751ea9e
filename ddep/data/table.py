"""The one table of supported datasets: MMSeg type, on-disk layout, geometry and how to prepare
them, plus the checks and config dicts built from it.

Pure Python (no torch, no mmseg): the workflow's preflight imports it while Snakemake parses the
Snakefile. The MMSeg dataset classes live in :mod:`ddep.data.datasets`.
"""

from __future__ import annotations

import os
import os.path as osp
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from ddep.data.builtin import BUILTIN_CLASSES

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
    """One dataset: MMSeg type, layout and the default geometry of MMSeg's base configs."""

    type: str
    num_classes: int
    img_suffix: str
    seg_map_suffix: str
    reduce_zero_label: bool
    splits: dict[str, SplitDef]
    crop_size: tuple[int, int]  # (h, w), as MMSeg's RandomCrop; also the sliding-window size
    train_scale: tuple[int, int]  # (w, h), as MMSeg's RandomResize / Resize
    test_scale: tuple[int, int]
    ratio_range: tuple[float, float] = (0.5, 2.0)
    prepare: str = ""
    layout: tuple[str, ...] = field(default_factory=tuple)


# The one table of dataset definitions (geometry from mmseg configs/_base_/datasets/*.py).
DATASET_DEFS: dict[str, DatasetDef] = {
    "cityscapes": DatasetDef(
        type="CityscapesDataset", num_classes=19,
        img_suffix="_leftImg8bit.png", seg_map_suffix="_gtFine_labelTrainIds.png",
        reduce_zero_label=False,
        splits={"train": SplitDef("leftImg8bit/train", "gtFine/train"),
                "val": SplitDef("leftImg8bit/val", "gtFine/val")},
        crop_size=(512, 1024), train_scale=(2048, 1024), test_scale=(2048, 1024),
        prepare="download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from "
                "cityscapes-dataset.com, unzip both into the root, then create the "
                "*_labelTrainIds.png maps with mmseg's "
                "`python tools/dataset_converters/cityscapes.py ROOT --nproc 8`",
        layout=("leftImg8bit/{train,val}/CITY/CITY_xxxxxx_yyyyyy_leftImg8bit.png",
                "gtFine/{train,val}/CITY/CITY_xxxxxx_yyyyyy_gtFine_labelTrainIds.png")),
    "ade20k": DatasetDef(
        type="ADE20KDataset", num_classes=150, img_suffix=".jpg", seg_map_suffix=".png",
        reduce_zero_label=True,
        splits={"train": SplitDef("images/training", "annotations/training"),
                "val": SplitDef("images/validation", "annotations/validation")},
        crop_size=(512, 512), train_scale=(2048, 512), test_scale=(2048, 512),
        prepare="download ADEChallengeData2016.zip (MIT Scene Parsing benchmark) and unzip it; "
                "ROOT is the ADEChallengeData2016 folder",
        layout=("images/{training,validation}/ADE_*_xxxxxxxx.jpg",
                "annotations/{training,validation}/ADE_*_xxxxxxxx.png")),
    "pascal_context59": DatasetDef(
        type="PascalContextDataset59", num_classes=59, img_suffix=".jpg", seg_map_suffix=".png",
        reduce_zero_label=True,
        splits={"train": SplitDef("JPEGImages", "SegmentationClassContext",
                                  "ImageSets/SegmentationContext/train.txt"),
                "val": SplitDef("JPEGImages", "SegmentationClassContext",
                                "ImageSets/SegmentationContext/val.txt")},
        crop_size=(480, 480), train_scale=(520, 520), test_scale=(520, 520),
        prepare="download VOCtrainval_03-May-2010.tar and trainval_merged.json, install the "
                "Detail API, then run mmseg's `python tools/dataset_converters/pascal_context.py "
                "data/VOCdevkit data/VOCdevkit/VOC2010/trainval_merged.json`; ROOT is "
                "VOCdevkit/VOC2010",
        layout=("JPEGImages/YYYY_xxxxxx.jpg", "SegmentationClassContext/YYYY_xxxxxx.png",
                "ImageSets/SegmentationContext/{train,val}.txt")),
    "builtin": DatasetDef(
        type="BuiltinStreetDataset", num_classes=len(BUILTIN_CLASSES), img_suffix=".png",
        seg_map_suffix=".png", reduce_zero_label=False,
        splits={"train": SplitDef("img_dir/train", "ann_dir/train"),
                "val": SplitDef("img_dir/val", "ann_dir/val")},
        crop_size=(64, 128), train_scale=(128, 64), test_scale=(128, 64),
        prepare="generate it: `python -c \"from ddep.data import generate_builtin; "
                "generate_builtin('ROOT')\"`",
        layout=("img_dir/{train,val,unlabelled}/NNNNNN.png", "ann_dir/{train,val}/NNNNNN.png",
                "meta.json")),
}


def slide_stride(crop_size: tuple[int, int]) -> tuple[int, int]:
    """Stride of the sliding window at evaluation: 2/3 of the crop, as mmseg's configs use
    (512 -> 341, 480 -> 320, 769 -> 513)."""
    return tuple(round(c * 2 / 3) for c in crop_size)  # type: ignore[return-value]


def get_dataset_def(name: str) -> DatasetDef:
    """The table entry for ``name`` (ValueError listing the known names otherwise)."""
    try:
        return DATASET_DEFS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASET_DEFS)}") from None


def dataset_cfg(name: str, data_root: str | os.PathLike, split: str = "train",
                ann_file: str | os.PathLike | None = None, pipeline: list | None = None,
                **overrides: Any) -> dict:
    """An MMSeg dataset config dict for ``split`` of ``name``.

    ``ann_file`` (e.g. a label-fraction split) replaces the table's default list; a relative path
    is taken relative to the current directory, not the data root.
    """
    d = get_dataset_def(name)
    if split not in d.splits:
        raise ValueError(f"dataset {name!r} has no split {split!r}; known: {sorted(d.splits)}")
    s = d.splits[split]
    if ann_file is not None:
        ann = osp.abspath(ann_file)
    else:
        ann = s.ann_file or ""
    cfg = dict(type=d.type, data_root=str(data_root),
               data_prefix=dict(img_path=s.img_path, seg_map_path=s.seg_map_path),
               img_suffix=d.img_suffix, seg_map_suffix=d.seg_map_suffix,
               reduce_zero_label=d.reduce_zero_label, ann_file=ann,
               pipeline=list(pipeline) if pipeline is not None else [])
    cfg.update(overrides)
    return cfg


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
