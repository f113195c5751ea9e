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
    """One dataset: MMSeg type and layout, as the layout checks need them, and (a dataset a
    sweep entry defines) the entry's definition, which the jobs compose its config from."""

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
    # A sweep entry's own definition (DEFINITION_KEYS); empty for the table's datasets.
    definition: dict = field(default_factory=dict, compare=False)


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


def get_dataset_def(name: str | DatasetDef) -> DatasetDef:
    """The table entry for ``name`` (ValueError listing the known names otherwise); a
    :class:`DatasetDef` is returned as it is."""
    if isinstance(name, DatasetDef):
        return name
    try:
        return DATASET_DEFS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASET_DEFS)}") from None


# The keys of a sweep's dataset entry that define the dataset (the others say how the sweep
# uses it: root, fractions, unlabelled folders, crop, encoder weights). An entry with none of
# them is the table's dataset of its name.
DEFINITION_KEYS = ("config", "type", "train", "val", "img_suffix", "seg_map_suffix",
                   "reduce_zero_label", "classes", "palette", "ignore_index", "schedules")
# mmseg's BaseSegDataset defaults, for a type + paths entry that states no suffix
_SUFFIXES = {"img_suffix": ".jpg", "seg_map_suffix": ".png"}
# mmseg's img_dir/ann_dir layout, for a type + paths entry that states no split folders
MMSEG_LAYOUT = {"train": {"img_path": "img_dir/train", "seg_map_path": "ann_dir/train"},
                "val": {"img_path": "img_dir/val", "seg_map_path": "ann_dir/val"}}


def definition(entry: dict | None) -> dict:
    """The defining keys of a sweep's dataset entry (:data:`DEFINITION_KEYS`)."""
    return {k: v for k, v in (entry or {}).items() if k in DEFINITION_KEYS}


def dataset_def(name: str, entry: dict | None = None) -> DatasetDef:
    """The dataset a sweep entry ``datasets.<name>`` means: the one its own keys define (an
    mmseg dataset config, or a type and paths), else the table's dataset of that name. One
    line naming the key for an entry that defines no dataset."""
    own = definition(entry)
    if not own:
        if name in DATASET_DEFS:
            return DATASET_DEFS[name]
        raise ValueError(
            f"datasets.{name}: no dataset config: add `config:` (an mmseg dataset config, e.g. "
            f"mmseg::_base_/datasets/synapse.py or my_dataset.py) or `type:` (an mmseg dataset "
            f"class, e.g. BaseSegDataset) with its `classes:` (docs/datasets.md); without either "
            f"an entry must be named after one of ddep's datasets {sorted(DATASET_DEFS)}")
    if "config" not in own and "type" not in own:
        raise ValueError(f"datasets.{name}: sets {sorted(own)} but no dataset config: add "
                         f"`config:` (an mmseg dataset config) or `type:` with its paths "
                         f"(docs/datasets.md)")
    if own.get("config") in DATASET_DEFS:
        base = DATASET_DEFS[own["config"]]
        layers = {split: s.__dict__ for split, s in base.splits.items()}  # its development scenes too
        fields = dict(type=base.type, img_suffix=base.img_suffix,
                      seg_map_suffix=base.seg_map_suffix, reduce_zero_label=base.reduce_zero_label)
    elif "config" in own:
        fields, layers = _from_config(name, own["config"])
    else:
        fields, layers = dict(type=own["type"], reduce_zero_label=False, **_SUFFIXES), MMSEG_LAYOUT
    fields.update({k: own[k] for k in ("type", "img_suffix", "seg_map_suffix", "reduce_zero_label")
                   if k in own})
    splits = {split: SplitDef(**{**{k: v for k, v in layers[split].items() if v is not None},
                                 **(own.get(split) or {})})
              for split in layers}
    layout = tuple(line for s in splits.values() for line in
                   (f"{s.img_path}/NAME{fields['img_suffix']}",
                    f"{s.seg_map_path}/NAME{fields['seg_map_suffix']}",
                    *([s.ann_file] if s.ann_file else [])))
    return DatasetDef(**fields, splits=splits, layout=tuple(dict.fromkeys(layout)),
                      prepare=f"put its images and label maps there, or change datasets.{name}'s "
                              f"`train:`/`val:` paths (docs/datasets.md)",
                      definition=own)


def _from_config(name: str, source: str) -> tuple[dict, dict]:
    """Type, suffixes and split folders of an mmseg dataset config (read without mmseg)."""
    config = dataset_source_config(source)
    fields, layers = {}, {}
    for split in ("train", "val"):
        loader = config.get(f"{split}_dataloader") or {}
        ds = loader.get("dataset") or {}
        while ds.get("type") in ("RepeatDataset", "ConcatDataset") and ds.get("dataset"):
            ds = ds["dataset"]  # mmseg wraps some train sets
        if not ds.get("type"):
            raise ValueError(f"datasets.{name}.config: {source} has no {split}_dataloader.dataset "
                             f"with a type: not an mmseg dataset config")
        prefix = ds.get("data_prefix") or {}
        layers[split] = dict(img_path=prefix.get("img_path", ""),
                             seg_map_path=prefix.get("seg_map_path", ""),
                             ann_file=ds.get("ann_file") or None)
        if split == "train":
            fields = dict(type=ds["type"], reduce_zero_label=bool(ds.get("reduce_zero_label", False)),
                          **{k: ds.get(k, v) for k, v in _SUFFIXES.items()})
    return fields, layers


@functools.cache
def dataset_source_config(source: str):  # -> mmengine.Config
    """An mmseg dataset config: a ``.py`` file, or ``mmseg::_base_/datasets/....py`` (read as a
    file that inherits it, as ddep's own dataset files do)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        from mmengine.config import Config
        if source.startswith("mmseg::"):
            return Config.fromstring(f"_base_ = [{source!r}]\n", ".py")
        if not Path(source).is_file():
            raise ValueError(f"dataset config {source} not found (a .py file, or mmseg::... for "
                             f"one of mmseg's)")
        return Config.fromfile(source, import_custom_modules=False)


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


def entry_literal(name: str, entry: dict | None, key: str) -> Any:
    """:func:`config_literal` for a sweep's dataset entry: from the dataset config it names
    (its ``config:``, or ddep's template of mmseg's layout for a ``type:``), else from ddep's
    file of its name."""
    own = definition(entry)
    source = own.get("config")
    if not own or source in DATASET_DEFS:
        return config_literal(source or name, key)
    config = dataset_source_config(source) if source else _own_template()
    if key not in config:
        raise KeyError(f"datasets.{name}: its dataset config {source or ''} sets no {key!r}: "
                       f"give the entry a `{key}:`")
    return config[key]


def _own_template():
    return dataset_source_config(str(DATASET_CONFIGS.parent / "own_dataset.py"))


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


def check_dataset(dataset: str | DatasetDef, data_root: str | os.PathLike,
                  splits: tuple[str, ...] = ("train", "val"), name: str = "") -> None:
    """Raise ``DatasetNotFoundError`` naming the first missing/empty path of the dataset
    (``name``: how the message names it; default: the table's name, or its type)."""
    d = get_dataset_def(dataset)
    name = name or (dataset if isinstance(dataset, str) else d.type)
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


def split_sha256(name: str | DatasetDef, data_root: str | os.PathLike, split: str) -> str:
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
def _stems(folder: Path, suffix: str) -> dict[str, Path]:
    """File stem (relative to ``folder``, suffix removed) -> path, of the files ending in ``suffix``."""
    found = {}
    for dirpath, _, files in os.walk(folder, followlinks=True):
        for f in files:
            if f.endswith(suffix):
                path = Path(dirpath) / f
                found[path.relative_to(folder).as_posix()[: -len(suffix)]] = path
    return found


def unpaired(name: str | DatasetDef, data_root: str | os.PathLike, split: str) -> str | None:
    """Why a split's images and label maps do not pair up (both counts and the first unpaired
    file), or None. Splits listed by an ``ann_file`` are left to mmseg (it reads what is listed)."""
    d = get_dataset_def(name)
    s = d.splits[split]
    if s.ann_file:
        return None
    root = Path(data_root)
    images = _stems(root / s.img_path, d.img_suffix)
    labels = _stems(root / s.seg_map_path, d.seg_map_suffix)
    if images.keys() == labels.keys():
        return None
    lonely = sorted(images.keys() - labels.keys())
    if lonely:
        first = f"{images[lonely[0]]} has no label map {root / s.seg_map_path / lonely[0]}{d.seg_map_suffix}"
    else:
        stem = sorted(labels.keys() - images.keys())[0]
        first = f"{labels[stem]} has no image {root / s.img_path / stem}{d.img_suffix}"
    return (f"the {split} split's {len(images)} images (*{d.img_suffix} under {root / s.img_path}) "
            f"and {len(labels)} label maps (*{d.seg_map_suffix} under {root / s.seg_map_path}) do "
            f"not pair up: {first}")


def label_values(path: str | os.PathLike, reduce_zero_label: bool = False):
    """The distinct values of a label map as the loader sees them (mmseg's reduce_zero_label:
    0 -> 255, k -> k - 1)."""
    import numpy as np
    from PIL import Image
    with Image.open(path) as im:
        values = np.unique(np.asarray(im))
    if reduce_zero_label:
        values = np.unique(np.where(values == 0, 255, values - 1))
    return values


def bad_labels(name: str | DatasetDef, data_root: str | os.PathLike, num_classes: int,
               ignore_index: int = 255) -> str | None:
    """The first label map (train, then val) with a value that is neither a class index below
    ``num_classes`` nor ``ignore_index``, said in one line with its values; None if all fit."""
    d = get_dataset_def(name)
    root = Path(data_root)
    for split in ("train", "val"):
        s = d.splits[split]
        for stem, path in sorted(_stems(root / s.seg_map_path, d.seg_map_suffix).items()):
            values = label_values(path, d.reduce_zero_label)
            bad = [int(v) for v in values if v >= num_classes and v != ignore_index]
            if bad:
                shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
                return (f"label map {path} has values {shown} outside the dataset's {num_classes} "
                        f"classes (0..{num_classes - 1}) and its ignore index {ignore_index}: fix the "
                        f"labels, or the entry's `classes:` / `ignore_index:`")
    return None
