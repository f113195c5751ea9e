"""The procedural material the built-in street scenes (``ddep.data.builtin``) and the source set
(``ddep.data.source``) share: the paint pools, each split's RNG stream code, value noise, the
photometric finish, and :class:`Difficulty`, which holds the generator's levers."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Class indices of the street scenes' label maps (the order of builtin.BUILTIN_CLASSES).
ROAD, SIDEWALK, BUILDING, POLE, VEGETATION, TERRAIN, SKY, PERSON, CAR = range(9)
# RNG stream of each split (4 and 5 were the retired grid-presence set's).
SPLIT_CODES = {"train": 1, "val": 2, "unlabelled": 3, "dev": 4, "source_train": 6, "source_val": 7}

# Material pools (RGB). Pools deliberately overlap across classes (grey building = grey sidewalk
# = grey pole = silver car, green car ~ vegetation, ...) so a pixel's colour is ambiguous.
_GREYS = [(150, 150, 150), (110, 110, 112), (185, 185, 180), (80, 82, 86)]
_MATERIALS: dict[int, list[tuple[int, int, int]]] = {
    SKY: [(135, 180, 235), (200, 205, 212), (235, 190, 150), (95, 115, 165), (170, 200, 225)],
    ROAD: [(70, 70, 75), (100, 100, 100), (120, 110, 100), (55, 60, 65), (150, 150, 150)],
    SIDEWALK: _GREYS + [(180, 170, 150), (160, 110, 100), (120, 140, 160)],
    BUILDING: _GREYS + [(190, 170, 140), (150, 80, 60), (220, 220, 210), (120, 140, 160),
                        (200, 205, 212), (100, 120, 80)],
    POLE: _GREYS + [(60, 60, 60), (70, 100, 70), (120, 90, 60)],
    VEGETATION: [(60, 110, 50), (40, 80, 40), (110, 140, 60), (150, 110, 50), (80, 100, 60)],
    TERRAIN: [(110, 150, 70), (140, 140, 80), (120, 100, 70), (90, 130, 60), (160, 110, 100)],
    CAR: _GREYS + [(170, 40, 40), (40, 60, 150), (230, 230, 230), (30, 30, 35), (60, 110, 50),
                   (210, 180, 60), (120, 140, 160), (150, 80, 60)],
    PERSON: _GREYS + [(40, 60, 150), (30, 30, 35), (170, 40, 40), (190, 170, 140),
                      (60, 110, 50), (230, 230, 230)],
}
# Paints of each class's own, apart from every other class's (Difficulty.shared_paints).
_OWN_MATERIALS: dict[int, list[tuple[int, int, int]]] = {
    SKY: [(135, 180, 235), (170, 200, 225), (110, 150, 210)],
    ROAD: [(70, 70, 75), (55, 60, 65), (85, 82, 80)],
    SIDEWALK: [(185, 175, 150), (205, 195, 170), (165, 150, 130)],
    BUILDING: [(150, 80, 60), (120, 60, 50), (175, 115, 85), (125, 105, 140)],
    POLE: [(235, 195, 50), (215, 215, 225)],
    VEGETATION: [(60, 110, 50), (40, 85, 40), (75, 125, 35)],
    TERRAIN: [(165, 120, 70), (140, 175, 85), (185, 140, 90)],
    CAR: [(35, 40, 150), (25, 125, 165), (240, 240, 240)],
    PERSON: [(205, 40, 65), (225, 125, 40), (150, 40, 150)],
}


@dataclass(frozen=True)
class Difficulty:
    """How hard the scenes are: object sizes, how often paints are shared between classes, and
    the photometric nuisances (shared with the source set). The defaults are the miniature's
    design, chosen on development seeds for learnability and cost (docs/tuning.md, section 11,
    which also lists the harder settings of the runs before it)."""

    min_width_px: float = 4.0          # the thinnest any part is drawn, in output pixels
    pole_width: float = 0.25           # shaft width per unit of 1/depth (camera heights)
    person_width: float = 0.5
    person_height: tuple[float, float] = (1.2, 1.6)
    max_depth: tuple[float, float, float, float] = (20.0, 12.0, 15.0, 20.0)  # car, person, pole, tree
    terrain_p: float = 0.6             # a side of the street is terrain beyond the sidewalk
    terrain_width: tuple[float, float] = (1.0, 4.0)  # that strip's width, camera heights
    shared_paints: float = 0.3         # share of colours drawn from the overlapping pools
    shading: float = 0.3               # strength of the lighting gradient, up to
    blur_p: float = 0.3
    gain: tuple[float, float] = (0.8, 1.2)
    offset: float = 15.0
    contrast: tuple[float, float] = (0.8, 1.2)
    noise: tuple[float, float] = (1.0, 5.0)    # sensor noise sd, grey levels
    gamma: tuple[float, float] = (0.85, 1.2)
    shuffle_p: float = 0.0             # channel shuffle
    grey_p: float = 0.0                # greyscale


DIFFICULTY = Difficulty()


def _value_noise(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, freq: float) -> np.ndarray:
    """Bilinear value noise in [-1, 1] evaluated at scene coords (u, v) (rotates with the scene)."""
    n = 24
    lattice = rng.uniform(-1, 1, (n + 1) * (n + 1)).astype(np.float32)
    fu, fv = (u * freq) % n, (v * freq) % n
    iu = np.minimum(fu.astype(np.int32), n - 1)  # float32 % can round up to n
    iv = np.minimum(fv.astype(np.int32), n - 1)
    du, dv = fu - iu, fv - iv
    idx = iv * (n + 1) + iu
    a = lattice.take(idx)
    a += (lattice.take(idx + 1) - a) * du
    b = lattice.take(idx + n + 1)
    b += (lattice.take(idx + n + 2) - b) * du
    return a + (b - a) * dv


def _finish(rng: np.random.Generator, img: np.ndarray, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Photometric nuisances of a float HxWx3 image (changed in place): shading, blur, noise,
    contrast, channel shuffle, greyscale."""
    dif = DIFFICULTY
    phi = rng.uniform(0, 2 * np.pi)
    grad = (np.cos(phi) * X + np.sin(phi) * Y)
    img *= (1.0 + rng.uniform(0, dif.shading) * (grad - grad.mean()))[..., None]
    if rng.random() < dif.blur_p:  # cheap separable [1 2 1] blur
        img = (np.roll(img, 1, 0) + 2 * img + np.roll(img, -1, 0)) / 4
        img = (np.roll(img, 1, 1) + 2 * img + np.roll(img, -1, 1)) / 4
    img = img * rng.uniform(*dif.gain) + rng.uniform(-dif.offset, dif.offset)
    img = (img - 128) * rng.uniform(*dif.contrast) + 128
    img = img + rng.uniform(*dif.noise) * rng.standard_normal(img.shape, dtype=np.float32)
    img = np.clip(img, 0, 255)
    gamma = rng.uniform(*dif.gamma)
    img = 255.0 * (img / 255.0) ** gamma
    if rng.random() < dif.shuffle_p:
        img = img[..., rng.permutation(3)]
    if rng.random() < dif.grey_p:
        img = np.repeat((img @ np.array([0.299, 0.587, 0.114], np.float32))[..., None], 3, -1)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
