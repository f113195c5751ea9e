"""Tiny fake copies of the paper datasets, laid out and named exactly as the real releases, with
the real releases' image sizes and label values (ignore values included).

Images are smooth colour fields with a few blocks (realistic sizes, small files); label maps are
horizontal bands, one band per label value, so every value the dataset uses appears.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# Label values as they are on disk (before mmseg's reduce_zero_label).
CITYSCAPES_LABELS = [*range(19), 255]        # labelTrainIds: 19 classes, 255 = ignore
ADE20K_LABELS = [0, 1, 2, 13, 77, 150]       # 0 = "other" (ignored), 1..150 classes
PASCAL_CONTEXT_LABELS = [0, 1, 5, 33, 59]    # 0 = background (ignored), 1..59 classes

# (width, height) of real images: Cityscapes is always 2048x1024; Pascal Context (VOC2010) is
# 500 on the long side; ADE20K varies (e.g. 683x512, 512x384, 256x341).
CITYSCAPES_SIZE = (2048, 1024)
PASCAL_CONTEXT_SIZES = [(500, 375), (375, 500)]
ADE20K_SIZES = [(683, 512), (512, 384), (256, 341)]


def image(path: Path, size: tuple[int, int], seed: int = 0, grain: float = 0.0) -> None:
    """An RGB image of ``size`` (w, h): a gradient with random blocks (PNG or JPEG by suffix),
    plus pixel noise of standard deviation ``grain`` (1 makes a 2048x1024 PNG as large as a
    Cityscapes photo, 2.2 MiB)."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(40, 200, 3)
    arr = base + 40 * np.stack([xx / w, yy / h, (xx + yy) / (w + h)], axis=-1)
    for _ in range(6):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        arr[y0:y0 + h // 4, x0:x0 + w // 4] = rng.uniform(0, 255, 3)
    if grain:
        arr += rng.normal(0, grain, arr.shape).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(path, quality=90)


def label_bands(size: tuple[int, int], values: list[int]) -> np.ndarray:
    """An (h, w) uint8 label map of horizontal bands, one per value, top to bottom."""
    w, h = size
    rows = np.arange(h) * len(values) // h
    return np.asarray(values, np.uint8)[rows][:, None].repeat(w, axis=1)


def label(path: Path, size: tuple[int, int], values: list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(label_bands(size, values)).save(path)


def make_cityscapes(root: Path, n_train: int = 4, n_val: int = 1,
                    size: tuple[int, int] = CITYSCAPES_SIZE, grain: float = 0.0) -> None:
    """``leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png`` and the gtFine maps
    (labelTrainIds as mmseg's converter writes them, plus labelIds)."""
    cities = {"train": ["aachen", "bochum"], "val": ["frankfurt", "lindau"]}
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            city = cities[split][i % 2]
            stem = f"{city}_{i:06d}_000019"
            image(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", size, seed=i,
                  grain=grain)
            gt = root / "gtFine" / split / city
            label(gt / f"{stem}_gtFine_labelTrainIds.png", size, CITYSCAPES_LABELS)
            label(gt / f"{stem}_gtFine_labelIds.png", size, [v + 7 for v in range(19)] + [0])


def make_ade20k(root: Path, n_train: int = 4, sizes: list[tuple[int, int]] = ADE20K_SIZES) -> None:
    """``images/{training,validation}/ADE_{train,val}_%08d.jpg`` + ``annotations/...png``;
    the validation images take every size in ``sizes``."""
    for split, tag, n in (("training", "train", n_train), ("validation", "val", len(sizes))):
        for i in range(n):
            size = sizes[i % len(sizes)]
            image(root / "images" / split / f"ADE_{tag}_{i + 1:08d}.jpg", size, seed=i)
            label(root / "annotations" / split / f"ADE_{tag}_{i + 1:08d}.png", size, ADE20K_LABELS)


def make_pascal_context(root: Path, n_train: int = 4,
                        sizes: list[tuple[int, int]] = PASCAL_CONTEXT_SIZES) -> None:
    """VOC2010 as mmseg's converter leaves it: ``JPEGImages/2008_000002.jpg``,
    ``SegmentationClassContext/2008_000002.png``, ``ImageSets/SegmentationContext/{train,val}.txt``;
    the val images take every size in ``sizes``."""
    stems = {"train": [f"2008_{2 * i + 2:06d}" for i in range(n_train)],
             "val": [f"2008_{2 * i + 3:06d}" for i in range(len(sizes))]}
    for split, names in stems.items():
        for i, stem in enumerate(names):
            size = sizes[i % len(sizes)]
            image(root / "JPEGImages" / f"{stem}.jpg", size, seed=i)
            label(root / "SegmentationClassContext" / f"{stem}.png", size, PASCAL_CONTEXT_LABELS)
        lst = root / "ImageSets" / "SegmentationContext" / f"{split}.txt"
        lst.parent.mkdir(parents=True, exist_ok=True)
        lst.write_text("".join(f"{s}\n" for s in names))


def make_imagenet(root: Path, classes: tuple[str, ...] = ("n01440764", "n01443537"),
                  per_class: int = 2) -> None:
    """ImageNet's train layout: ``{wnid}/{wnid}_{n}.JPEG`` (e.g. 500x375 and 375x500)."""
    for c, wnid in enumerate(classes):
        for i in range(per_class):
            size = PASCAL_CONTEXT_SIZES[(c + i) % 2]
            image(root / wnid / f"{wnid}_{10026 + i}.JPEG", size, seed=10 * c + i)


MAKERS = {"cityscapes": make_cityscapes, "ade20k": make_ade20k,
          "pascal_context59": make_pascal_context}


def tiny_encoder_checkpoint(path: Path) -> Path:
    """A timm-format checkpoint of the tiny preset's encoder, standing in for in21k weights."""
    from safetensors.torch import save_file

    from ddep.models import PRESETS, build_hybrid_vit

    vit = build_hybrid_vit(**PRESETS["tiny"])
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(path))
    return path


def fake_paper_inputs(cfg: dict, tmp_path: Path) -> dict:
    """``cfg`` (config/paper.yaml) with every input it names replaced by a fake made here: the
    three dataset trees, an ImageNet-style folder and a tiny timm encoder checkpoint. The grid
    itself (fractions, arms, seeds, sigma sweep) is left as it is."""
    encoder = tiny_encoder_checkpoint(tmp_path / "tiny_in21k.safetensors")
    imagenet = tmp_path / "imagenet" / "train"
    make_imagenet(imagenet)
    for name, d in cfg["datasets"].items():
        root = tmp_path / "data" / name
        MAKERS[name](root)
        source = d.get("unlabelled")
        d.update(root=str(root), encoder_weights=str(encoder),
                 unlabelled={arm: source.get(arm) and str(imagenet) for arm in source}
                 if isinstance(source, dict) else source and str(imagenet))
    return cfg
