"""Dataset table, configs and loading through MMSeg on tiny fake trees in the real layouts,
with the real image sizes and label values (tests/fake_data.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ddep.data import (
    BUILTIN_CLASSES,
    DATASET_DEFS,
    DatasetNotFoundError,
    check_dataset,
    config_literal,
    generate_builtin,
    select_split,
    write_split,
)

from fake_data import (
    ADE20K_LABELS,
    ADE20K_SIZES,
    CITYSCAPES_LABELS,
    CITYSCAPES_SIZE,
    MAKERS,
    PASCAL_CONTEXT_LABELS,
    PASCAL_CONTEXT_SIZES,
    label_bands,
)
from fake_data import image as _image

ON_DISK = {"cityscapes": (CITYSCAPES_LABELS, [CITYSCAPES_SIZE]),
           "ade20k": (ADE20K_LABELS, ADE20K_SIZES),
           "pascal_context59": (PASCAL_CONTEXT_LABELS, PASCAL_CONTEXT_SIZES)}


@pytest.fixture(scope="module", autouse=True)
def mmseg_scope():
    import ddep.data.datasets  # noqa: F401  (registers ddep's dataset classes)
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=True)


def _img(path: Path, h: int = 8, w: int = 32) -> None:
    _image(path, (w, h))


def dataset_cfg(name: str, root: Path, split: str, ann_file: Path | None = None) -> dict:
    """The ``split`` dataset of the dataset's config file at ``root``, loading images and labels
    only (reduce_zero_label comes from the dataset; mmseg deprecates setting it in the loader)."""
    from ddep.configs import finetune_config

    cfg = finetune_config(name, "tiny", root)
    loader = {"train": cfg.train_dataloader, "val": cfg.val_dataloader}[split]
    extra = {} if ann_file is None else dict(ann_file=str(ann_file))
    return dict(loader.dataset.to_dict(), **extra,
                pipeline=[dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")])


def _build(cfg: dict):
    from mmseg.registry import DATASETS

    ds = DATASETS.build(cfg)
    ds.full_init()
    return ds


def test_table_and_config_files_match_paper_datasets():
    from ddep.configs import finetune_config

    classes = {k: (d.type, config_literal(k, "num_classes")) for k, d in DATASET_DEFS.items()}
    assert classes == {
        "cityscapes": ("CityscapesDataset", 19), "ade20k": ("ADE20KDataset", 150),
        "pascal_context59": ("PascalContextDataset59", 59),
        "builtin": ("BuiltinStreetDataset", len(BUILTIN_CLASSES))}
    assert config_literal("cityscapes", "crop_size") == (512, 1024)  # from mmseg's file
    assert config_literal("ade20k", "crop_size") == (512, 512)
    assert config_literal("pascal_context59", "crop_size") == (480, 480)
    for name, d in DATASET_DEFS.items():  # the table's layout is the config files' layout
        cfg = finetune_config(name, "tiny", "/x")
        assert cfg.crop_size == config_literal(name, "crop_size")
        for split, loader in (("train", cfg.train_dataloader), ("val", cfg.val_dataloader)):
            assert loader.dataset.type == d.type
            assert loader.dataset.data_prefix == dict(img_path=d.splits[split].img_path,
                                                      seg_map_path=d.splits[split].seg_map_path)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_real_shape_tree_loads_with_correct_labels(name, tmp_path):
    """Real layout, real image sizes, real label values: mmseg reads every image at its size
    and maps the labels as the paper's evaluation expects (ignore values included)."""
    MAKERS[name](tmp_path)
    check_dataset(name, tmp_path)
    values, sizes = ON_DISK[name]
    for split in ("train", "val"):
        ds = _build(dataset_cfg(name, tmp_path, split))
        assert len(ds) == {"train": 4, "val": {"cityscapes": 1}.get(name, len(sizes))}[split]
        shapes = set()
        for item in ds:
            h, w = item["img"].shape[:2]
            shapes.add((w, h))
            raw = label_bands((w, h), values)
            if DATASET_DEFS[name].reduce_zero_label:  # raw 0 -> 255 (ignored), k -> k - 1
                want = np.where(raw == 0, 255, raw.astype(int) - 1)
            else:  # Cityscapes labelTrainIds are used as they are (255 = ignore)
                want = raw
            np.testing.assert_array_equal(item["gt_seg_map"], want)
        if split == "val":
            assert shapes == set(sizes)
    assert int(want.max()) == 255 and int(want[want != 255].max()) == config_literal(name, "num_classes") - 1


def test_cityscapes_split_ann_file(tmp_path):
    MAKERS["cityscapes"](tmp_path)
    from ddep.data import list_train_stems

    stems = list_train_stems("cityscapes", tmp_path)
    assert stems[0] == "aachen/aachen_000000_000019"
    split = write_split(tmp_path / "split.txt", select_split(stems, "cityscapes", 2, 0))
    ds = _build(dataset_cfg("cityscapes", tmp_path, "train", ann_file=split))
    assert len(ds) == 2 and ds[1]["gt_seg_map"].shape == (1024, 2048)


def test_builtin_dataset_and_unlabelled_pool(tmp_path):
    root = generate_builtin(tmp_path / "b", n_train=3, n_val=2, n_unlabelled=5, n_source_train=1,
                            n_source_val=1, workers=1)
    check_dataset("builtin", root)
    ds = _build(dataset_cfg("builtin", root, "train"))
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


def test_unknown_dataset():
    from ddep.configs import finetune_config

    with pytest.raises(ValueError, match="unknown dataset"):
        config_literal("imagenet", "crop_size")
    with pytest.raises(ValueError, match=r"no config file .*imagenet\.py"):
        finetune_config("imagenet", "tiny", "/x")
