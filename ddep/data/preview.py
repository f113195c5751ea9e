"""Preview grid of built-in images next to their colourised label maps."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ddep.data.builtin import BUILTIN_PALETTE, IGNORE_INDEX
from ddep.io import atomic_path


def colorize(label: np.ndarray) -> np.ndarray:
    """HxW class ids -> HxWx3 palette colours (ignore index in white)."""
    lut = np.full((256, 3), 255, np.uint8)
    lut[: len(BUILTIN_PALETTE)] = BUILTIN_PALETTE
    lut[IGNORE_INDEX] = 255
    return lut[label]


def write_preview_grid(root: str | os.PathLike, out_png: str | os.PathLike, n: int = 8,
                       split: str = "train", scale: int = 2) -> Path:
    """Write a PNG with ``n`` rows of (image | label colours) from ``root``'s ``split``."""
    root, out_png = Path(root), Path(out_png)
    names = sorted(p.name for p in (root / "ann_dir" / split).glob("*.png"))[:n]
    if not names:
        raise FileNotFoundError(f"no label maps under {root / 'ann_dir' / split}")
    rows = []
    for name in names:
        img = np.asarray(Image.open(root / "img_dir" / split / name).convert("RGB"))
        lab = colorize(np.asarray(Image.open(root / "ann_dir" / split / name)))
        gap = np.full((img.shape[0], 2, 3), 255, np.uint8)
        rows.append(np.concatenate([img, gap, lab], 1))
        rows.append(np.full((2, rows[-1].shape[1], 3), 255, np.uint8))
    grid = np.concatenate(rows[:-1], 0)
    grid = grid.repeat(scale, 0).repeat(scale, 1)
    with atomic_path(out_png) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")
    return out_png


def write_source_preview(root: str | os.PathLike, out_png: str | os.PathLike, split: str = "val",
                         per_class: int = 2, columns: int = 6, scale: int = 2) -> Path:
    """Write a PNG of the source set (``root/source/split/CLASS/*.png``): ``per_class`` images
    of every class side by side, each class captioned with its name."""
    from PIL import ImageDraw

    root, out_png = Path(root), Path(out_png)
    folder = root / "source" / split
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not classes:
        raise FileNotFoundError(f"no class folders under {folder} (generate the built-in dataset)")
    tiles = []
    for name in classes:
        images = [np.asarray(Image.open(p).convert("RGB")).repeat(scale, 0).repeat(scale, 1)
                  for p in sorted((folder / name).glob("*.png"))[:per_class]]
        if not images:
            raise FileNotFoundError(f"no images in {folder / name}")
        tile = Image.new("RGB", (sum(i.shape[1] for i in images) + 2 * (len(images) - 1),
                                 images[0].shape[0] + 14), "white")
        x = 0
        for image in images:
            tile.paste(Image.fromarray(image), (x, 14))
            x += image.shape[1] + 2
        ImageDraw.Draw(tile).text((2, 1), name, fill="black")
        tiles.append(tile)
    w, h = max(t.width for t in tiles), max(t.height for t in tiles)
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * (w + 6) - 6, rows * (h + 6) - 6), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * (w + 6), (i // columns) * (h + 6)))
    with atomic_path(out_png) as tmp:
        sheet.save(tmp, format="PNG")
    return out_png
