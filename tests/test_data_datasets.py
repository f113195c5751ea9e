"""Dataset table, configs and loading through MMSeg on tiny fake trees in the real layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ddep.data import (
    BUILTIN_CLASSES,
    DATASET_DEFS,
    DatasetNotFoundError,
    check_dataset,
    dataset_cfg,
    generate_builtin,
    select_split,
    write_split,
)

RAW = np.array([[0, 1, 2, 5], [7, 9, 18, 255]], np.uint8).repeat(4, 0).repeat(8, 1)  # 8x32


@pytest.fixture(scope="module", autouse=True)
def mmseg_scope():
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=True)


def _img(path: Path, h: int = 8, w: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, quality=95) if path.suffix == ".jpg" else \
        Image.fromarray(arr).save(path)


def _lab(path: Path, arr: np.ndarray = RAW) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_cityscapes(root: Path) -> None:
    for split, cities in (("train", ["aachen", "bochum"]), ("val", ["frankfurt"])):
        for city in cities:
            for i in range(2):
                stem = f"{city}_{i:06d}_000019"
                _img(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
                _lab(root / "gtFine" / split / city / f"{stem}_gtFine_labelTrainIds.png")
                _lab(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", RAW + 7)


def make_ade20k(root: Path) -> None:
    for split, tag in (("training", "train"), ("validation", "val")):
        for i in (1, 2):
            _img(root / "images" / split / f"ADE_{tag}_{i:08d}.jpg")
            _lab(root / "annotations" / split / f"ADE_{tag}_{i:08d}.png")


def make_pascal_context(root: Path) -> None:
    names = {"train": ["2008_000002", "2008_000003"], "val": ["2008_000008"]}
    for split, stems in names.items():
        for stem in stems:
            _img(root / "JPEGImages" / f"{stem}.jpg")
            _lab(root / "SegmentationClassContext" / f"{stem}.png")
        lst = root / "ImageSets" / "SegmentationContext" / f"{split}.txt"
        lst.parent.mkdir(parents=True, exist_ok=True)
        lst.write_text("".join(f"{s}\n" for s in stems))


MAKERS = {"cityscapes": make_cityscapes, "ade20k": make_ade20k,
          "pascal_context59": make_pascal_context}


def _load_pipeline(name: str) -> list[dict]:
    # reduce_zero_label comes from the dataset (dataset_cfg); mmseg deprecates setting it here
    return [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")]


def _build(cfg: dict):
    from mmseg.registry import DATASETS

    ds = DATASETS.build(cfg)
    ds.full_init()
    return ds


def test_table_matches_paper_datasets():
    assert {k: (d.type, d.num_classes) for k, d in DATASET_DEFS.items()} == {
        "cityscapes": ("CityscapesDataset", 19), "ade20k": ("ADE20KDataset", 150),
        "pascal_context59": ("PascalContextDataset59", 59),
        "builtin": ("BuiltinStreetDataset", len(BUILTIN_CLASSES))}
    assert DATASET_DEFS["cityscapes"].crop_size == (512, 1024)
    assert DATASET_DEFS["ade20k"].crop_size == (512, 512)
    assert DATASET_DEFS["pascal_context59"].crop_size == (480, 480)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_fake_tree_loads_with_correct_labels(name, tmp_path):
    MAKERS[name](tmp_path)
    check_dataset(name, tmp_path)
    expected = {"cityscapes": 4, "ade20k": 2, "pascal_context59": 2}[name]
    ds = _build(dataset_cfg(name, tmp_path, "train", pipeline=_load_pipeline(name)))
    assert len(ds) == expected
    item = ds[0]
    assert item["img"].shape == (8, 32, 3)
    seg = item["gt_seg_map"]
    if DATASET_DEFS[name].reduce_zero_label:  # raw 0 -> 255, raw k -> k - 1, 255 stays 255
        want = np.where(RAW == 0, 255, np.where(RAW == 255, 255, RAW.astype(int) - 1))
    else:  # Cityscapes labelTrainIds are used as they are
        want = RAW
    np.testing.assert_array_equal(seg, want)
    val = _build(dataset_cfg(name, tmp_path, "val", pipeline=_load_pipeline(name)))
    assert len(val) >= 1


def test_cityscapes_split_ann_file(tmp_path):
    make_cityscapes(tmp_path)
    from ddep.data import list_train_stems

    stems = list_train_stems("cityscapes", tmp_path)
    assert stems[0] == "aachen/aachen_000000_000019"
    split = write_split(tmp_path / "split.txt", select_split(stems, "cityscapes", 2, 0))
    ds = _build(dataset_cfg("cityscapes", tmp_path, "train", ann_file=split,
                            pipeline=_load_pipeline("cityscapes")))
    assert len(ds) == 2 and ds[1]["gt_seg_map"].shape == (8, 32)


def test_builtin_dataset_and_unlabelled_pool(tmp_path):
    root = generate_builtin(tmp_path / "b", n_train=3, n_val=2, n_unlabelled=5, n_cls_train=1,
                            n_cls_val=1, workers=1)
    check_dataset("builtin", root)
    ds = _build(dataset_cfg("builtin", root, "train", pipeline=_load_pipeline("builtin")))
    assert len(ds) == 3 and list(ds.metainfo["classes"]) == list(BUILTIN_CLASSES)
    seg = ds[0]["gt_seg_map"]
    assert seg.shape == (64, 128) and seg.max() < len(BUILTIN_CLASSES)

    from mmseg.registry import DATASETS

    pipeline = [dict(type="LoadImageFromFile"),
                dict(type="RandomResize", scale=(128, 64), ratio_range=(0.5, 2.0),
                     keep_ratio=True),
                dict(type="RandomCrop", crop_size=(32, 32)),
                dict(type="RandomFlip", prob=0.5),
                dict(type="PackSegInputs")]
    pool = DATASETS.build(dict(type="UnlabelledImageDataset", data_root=str(root),
                               data_prefix=dict(img_path="img_dir/unlabelled"),
                               max_images=4, pipeline=pipeline))
    assert len(pool) == 4
    assert pool.get_data_info(0)["img_path"].endswith("img_dir/unlabelled/000000.png")
    out = pool[0]
    assert tuple(out["inputs"].shape) == (3, 32, 32)
    assert "gt_sem_seg" not in out["data_samples"]
    mixed = tmp_path / "mixed" / "sub"
    _img(mixed / "a.JPG")
    _img(mixed / "b.jpeg")
    (mixed / "notes.txt").write_text("x")
    pool2 = DATASETS.build(dict(type="UnlabelledImageDataset", data_root=str(tmp_path / "mixed")))
    assert [Path(pool2.get_data_info(i)["img_path"]).name for i in range(len(pool2))] == [
        "a.JPG", "b.jpeg"]


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_missing_paths_give_one_clear_error(name, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError, match="data root does not exist") as e:
        check_dataset(name, missing)
    assert str(missing) in str(e.value) and "expected layout" in str(e.value)
    MAKERS[name](tmp_path)
    img_dir = tmp_path / DATASET_DEFS[name].splits["val"].seg_map_path
    for p in sorted(img_dir.rglob("*"), reverse=True):  # empty the val label folder
        if p.is_file():
            p.unlink()
    with pytest.raises(DatasetNotFoundError) as e:
        check_dataset(name, tmp_path)
    assert str(img_dir) in str(e.value)
    assert {"cityscapes": "cityscapes.py", "ade20k": "ADEChallengeData2016",
            "pascal_context59": "pascal_context.py"}[name] in str(e.value)


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_cfg("imagenet", "/x")
    with pytest.raises(ValueError, match="no split"):
        dataset_cfg("ade20k", "/x", split="test")
