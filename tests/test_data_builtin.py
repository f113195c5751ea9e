"""Built-in dataset generator: determinism, layout, label validity, class coverage, preview."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ddep.data import BUILTIN_CLASSES, generate_builtin, render_image, write_preview_grid

SMALL = dict(n_train=6, n_val=3, n_unlabelled=4, n_cls_train=5, n_cls_val=2)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return generate_builtin(tmp_path_factory.mktemp("a") / "builtin", seed=0, workers=1, **SMALL)


def test_same_seed_is_byte_identical_and_worker_independent(small, tmp_path):
    again = generate_builtin(tmp_path / "b", seed=0, workers=2, **SMALL)
    assert _digests(small) == _digests(again)


def test_different_seed_differs(small, tmp_path):
    other = _digests(generate_builtin(tmp_path / "c", seed=1, workers=1, **SMALL))
    base = _digests(small)
    pngs = [k for k in base if k.endswith(".png")]
    assert all(base[k] != other[k] for k in pngs)


def test_layout_labels_and_meta(small):
    k = len(BUILTIN_CLASSES)
    for split, n in (("train", 6), ("val", 3)):
        imgs = sorted((small / "img_dir" / split).iterdir())
        anns = sorted((small / "ann_dir" / split).iterdir())
        assert [p.name for p in imgs] == [p.name for p in anns] == [f"{i:06d}.png" for i in range(n)]
        for p in anns:
            lab = np.asarray(Image.open(p))
            assert lab.shape == (64, 128) and lab.dtype == np.uint8
            assert set(np.unique(lab)) <= set(range(k)) | {255}
        im = Image.open(imgs[0])
        assert im.mode == "RGB" and im.size == (128, 64)
    assert len(list((small / "img_dir" / "unlabelled").glob("*.png"))) == 4
    assert not (small / "ann_dir" / "unlabelled").exists()
    meta = json.loads((small / "meta.json").read_text())
    assert meta["classes"] == list(BUILTIN_CLASSES) and meta["grid"] == [2, 4]
    for split, n in (("train", 5), ("val", 2)):
        targets = json.loads((small / "cls" / f"{split}.json").read_text())
        assert sorted(targets) == sorted(p.name for p in (small / "cls" / split).glob("*.png"))
        assert len(targets) == n
        assert all(len(v) == 8 * k and set(v) <= {0, 1} and any(v) for v in targets.values())


def test_cls_and_seg_images_are_different_images():
    a, _ = render_image(0, "train", 0)
    b, _ = render_image(0, "cls_train", 0)
    c, _ = render_image(0, "unlabelled", 0)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def test_regeneration_is_a_no_op_and_shrinking_removes_stale_files(tmp_path):
    root = generate_builtin(tmp_path / "d", workers=1, **SMALL)
    stamp = (root / "meta.json").stat().st_mtime_ns
    generate_builtin(root, workers=1, **SMALL)
    assert (root / "meta.json").stat().st_mtime_ns == stamp
    generate_builtin(root, workers=1, **{**SMALL, "n_train": 2})
    assert len(list((root / "img_dir" / "train").iterdir())) == 2
    assert len(list((root / "ann_dir" / "train").iterdir())) == 2


def test_every_class_is_common_in_the_train_split():
    labels = np.stack([render_image(0, "train", i)[1] for i in range(100)])
    present = np.array([(labels == k).any(axis=(1, 2)).mean() for k in range(len(BUILTIN_CLASSES))])
    # every class appears in a good share of images, none dominates the pixels
    assert present.min() >= 0.3, dict(zip(BUILTIN_CLASSES, present))
    freq = np.bincount(labels.ravel(), minlength=256)[: len(BUILTIN_CLASSES)] / labels.size
    assert freq.min() > 0.005 and freq.max() < 0.5, dict(zip(BUILTIN_CLASSES, freq))


def _short_run_share(mask: np.ndarray) -> tuple[int, int]:
    """(pixels in horizontal runs shorter than 3 px, all pixels) of a mask."""
    edges = np.diff(np.pad(mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    runs = np.flatnonzero(edges.ravel() == -1) - np.flatnonzero(edges.ravel() == 1)
    return int(runs[runs < 3].sum()), int(runs.sum())


def test_thin_structures_are_at_least_three_pixels_wide():
    labels = [render_image(0, "train", i)[1] for i in range(60)]
    for name in ("pole", "person"):
        k = BUILTIN_CLASSES.index(name)
        short, total = map(sum, zip(*(_short_run_share(lab == k) for lab in labels)))
        assert total > 0 and short / total < 0.15, (name, short / total)


def test_preview_writes_png(small, tmp_path):
    out = write_preview_grid(small, tmp_path / "p" / "preview.png", n=3)
    im = Image.open(out)
    assert im.format == "PNG" and im.size[0] > 128 and im.size[1] > 3 * 64
