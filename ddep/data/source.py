"""The built-in *source* set: a generated, object-centric, single-label classification set, the
miniature's ImageNet. The supervised stand-in for the 21K encoder trains on it, and DDeP
pretrains its decoder on its images, as the paper does on ImageNet.

Each image shows one large object on a cluttered background. Its class is the object's shape
crossed with its surface pattern (8 shapes x 3 patterns = 24 classes), so the classifier must
learn both outlines and textures, and nothing about streets. Colours come from a broad palette
shared with the street scenes, and the images get the same photometric nuisances
(``ddep.data.procedural``'s finish), so they share low-level statistics with the target,
as ImageNet shares them with Cityscapes. No label is computed from the target's classes or
label maps: an image's class is ``index % len(SOURCE_CLASSES)``, a function of its index alone.

Every image is rendered from its own RNG stream, ``default_rng([seed, split_code, index])``.
"""
from __future__ import annotations

import functools

import numpy as np

from ddep.data.procedural import _MATERIALS, SPLIT_CODES, _finish, _value_noise

SHAPES: tuple[str, ...] = ("disk", "square", "triangle", "star", "ring", "cross", "crescent",
                           "hexagon")
PATTERNS: tuple[str, ...] = ("stripes", "checks", "spots")
SOURCE_CLASSES: tuple[str, ...] = tuple(f"{s}_{p}" for s in SHAPES for p in PATTERNS)
SOURCE_SIZE = 64  # square images, like ImageNet's 224 x 224 training crops


def source_label(index: int) -> int:
    """The class of source image ``index``: balanced, and a function of the index alone."""
    return index % len(SOURCE_CLASSES)


def _polygon(r: np.ndarray, theta: np.ndarray, n: int, radius: float) -> np.ndarray:
    """Inside a regular ``n``-gon of circumradius ``radius`` (polar coordinates)."""
    sector = 2 * np.pi / n
    return r * np.cos((theta % sector) - sector / 2) < radius * np.cos(np.pi / n)


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The object's outline in its own coordinates (unit radius)."""
    r, theta = np.hypot(u, v), np.arctan2(v, u)
    if shape == "disk":
        return r < 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) < 0.8
    if shape == "triangle":
        return _polygon(r, theta, 3, 1.1)
    if shape == "star":
        return r < 0.42 + 0.58 * (0.5 + 0.5 * np.cos(5 * theta)) ** 2
    if shape == "ring":
        return (r < 1.0) & (r > 0.55)
    if shape == "cross":
        return ((np.abs(u) < 0.32) & (np.abs(v) < 1.0)) | ((np.abs(v) < 0.32) & (np.abs(u) < 1.0))
    if shape == "crescent":
        return (r < 1.0) & (np.hypot(u - 0.5, v) > 0.8)
    if shape == "hexagon":
        return _polygon(r, theta, 6, 1.0)
    raise ValueError(f"unknown shape {shape!r}")


def _pattern(pattern: str, u: np.ndarray, v: np.ndarray, freq: float) -> np.ndarray:
    """Where the surface takes its second colour, in object coordinates (it turns with it)."""
    if pattern == "stripes":
        return (u * freq) % 1.0 < 0.5
    if pattern == "checks":
        return (np.floor(u * freq) + np.floor(v * freq)) % 2 == 1
    if pattern == "spots":
        return ((u * freq) % 1.0 - 0.5) ** 2 + ((v * freq) % 1.0 - 0.5) ** 2 < 0.09
    raise ValueError(f"unknown pattern {pattern!r}")


@functools.cache
def _palette() -> np.ndarray:
    # colours only: the street scenes' paints
    colours = {c for pool in _MATERIALS.values() for c in pool}
    return np.asarray(sorted(colours), np.float32)


def _paint(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    """``n`` jittered palette colours, or fully random ones (a third of the time)."""
    palette = _palette()
    base = palette[rng.integers(len(palette), size=n)]
    wild = rng.uniform(20, 235, (n, 3)).astype(np.float32)
    pick = rng.random((n, 1)) < 1 / 3
    out = np.where(pick, wild, base * rng.uniform(0.75, 1.25, (n, 1)) + rng.uniform(-20, 20, (n, 3)))
    return np.clip(out, 0, 255).astype(np.float32)


def _standing_out(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A paint whose mean channel difference from ``background`` is above 60."""
    while True:
        paint = _paint(rng)[0]
        if np.abs(paint - background).mean() > 60:
            return paint


def _object_coords(rng: np.random.Generator, X: np.ndarray, Y: np.ndarray, radius: float,
                   spread: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel -> object coordinates: a random centre, rotation and stretch, unit radius."""
    cx, cy = 0.5 + rng.uniform(-spread, spread, 2)
    angle = rng.uniform(-np.pi / 9, np.pi / 9)  # upright, give or take 20 degrees
    stretch = rng.uniform(0.9, 1.1)
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = X - cx, Y - cy
    return (c * dx + s * dy) / (radius * stretch), (-s * dx + c * dy) * stretch / radius


def render_source(seed: int, split: str, index: int, size: int = SOURCE_SIZE
                  ) -> tuple[np.ndarray, int]:
    """Render source image ``index`` of ``split``: (uint8 size x size x 3 image, class index)."""
    rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
    label = source_label(index)
    shape, pattern = SHAPES[label // len(PATTERNS)], PATTERNS[label % len(PATTERNS)]
    px = 1.0 / size
    Y, X = np.meshgrid((np.arange(size) + 0.5) * px, (np.arange(size) + 0.5) * px, indexing="ij")
    X, Y = X.astype(np.float32), Y.astype(np.float32)

    # Background: two colours blended by value noise, or a gradient, or coarse blotches.
    a, b = _paint(rng, 2)
    kind = rng.integers(3)
    if kind == 0:
        t = 0.5 + 0.5 * _value_noise(rng, X, Y, rng.uniform(3, 12))
    elif kind == 1:
        phi = rng.uniform(0, 2 * np.pi)
        t = np.clip(0.5 + np.cos(phi) * (X - 0.5) + np.sin(phi) * (Y - 0.5), 0, 1)
    else:
        t = (_value_noise(rng, X, Y, rng.uniform(4, 9)) > 0).astype(np.float32)
    img = a * t[..., None] + b * (1 - t[..., None])

    # Clutter: small plain shapes of any kind, so an outline alone does not give the class.
    for _ in range(rng.integers(0, 2)):
        u, v = _object_coords(rng, X, Y, rng.uniform(0.05, 0.10), 0.45)
        img[_shape_mask(SHAPES[rng.integers(len(SHAPES))], u, v)] = _paint(rng)[0]

    # The object: its shape in one paint that stands out from the background, its pattern a
    # darker print of the same paint (the outline is one region; the pattern is texture), shaded.
    u, v = _object_coords(rng, X, Y, rng.uniform(0.34, 0.44), 0.10)
    mask = _shape_mask(shape, u, v)
    paint = _standing_out(rng, img[mask].mean(0) if mask.any() else img.mean((0, 1)))
    dark = np.where(_pattern(pattern, u, v, rng.uniform(1.6, 2.6)), rng.uniform(0.2, 0.45), 1.0)
    shade = 1.0 + 0.15 * _value_noise(rng, X, Y, rng.uniform(5, 15))
    img[mask] = (paint * (dark * shade)[..., None])[mask]
    return _finish(rng, img, X, Y), label
