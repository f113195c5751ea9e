"""Procedural street-scene segmentation dataset (the built-in, download-free benchmark).

Every image is rendered from its own RNG stream, ``default_rng([seed, split_code, index])``, so
an image depends only on (seed, split, index) and never on generation order or worker count.

Scenes are one-point-perspective streets: road, sidewalks, building facades with windows, a far
skyline, trees, terrain strips and cars, people and poles placed in world coordinates, drawn far
to near (occlusion). The camera then zooms (1-2.2x), rolls (+-15 deg) and shifts; colours are
drawn from per-class paints, some of them shared between classes (grey building = grey sidewalk
= grey pole = silver car), so colour alone does not solve the task; images get shading, sensor
noise, blur and colour shifts. :class:`Difficulty` holds these levers.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
from PIL import Image

import ddep.data.procedural as procedural  # DIFFICULTY read at render time (a probe may set it)
from ddep.data.procedural import (  # noqa: F401  (the shared material, re-exported)
    BUILDING, CAR, PERSON, POLE, ROAD, SIDEWALK, SKY, SPLIT_CODES, TERRAIN, VEGETATION,
    _MATERIALS, _OWN_MATERIALS, Difficulty, _finish, _value_noise)
from ddep.data.source import SOURCE_CLASSES, SOURCE_SIZE, render_source, source_label
from ddep.data.table import DATASET_DEFS
from ddep.io import atomic_path, write_json

BUILTIN_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "pole", "vegetation", "terrain", "sky", "person", "car",
)
# Cityscapes' colours for the same classes, so previews read like Cityscapes ones.
BUILTIN_PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (153, 153, 153), (107, 142, 35),
    (152, 251, 152), (70, 130, 180), (220, 20, 60), (0, 0, 142),
)
IGNORE_INDEX = 255
# The source set's class-folder trees, relative to the built-in root.
SOURCE_DIRS = {"train": "source/train", "val": "source/val"}
FORMAT_VERSION = 3  # 3: the learnable design (Difficulty's defaults)

_TRUNK = [(90, 70, 50), (110, 110, 112), (70, 60, 50)]  # trunks share colours with poles
_POOLS = {k: np.asarray(v, np.float32) for k, v in _MATERIALS.items()}
_OWN_POOLS = {k: np.asarray(v, np.float32) for k, v in _OWN_MATERIALS.items()}


def _colors(rng: np.random.Generator, cls: int, n: int) -> np.ndarray:
    """``n`` jittered colours (n x 3) drawn from the material pool of ``cls``."""
    pool = _POOLS[cls] if rng.random() < procedural.DIFFICULTY.shared_paints else _OWN_POOLS[cls]
    r = rng.random((n, 5)).astype(np.float32)
    base = pool[(r[:, 0] * len(pool)).astype(np.int64)]
    out = base * (0.75 + 0.5 * r[:, 1:2]) + (r[:, 2:] - 0.5) * 40.0
    return np.minimum(np.maximum(out, 0.0), 255.0)


def _color(rng: np.random.Generator, cls: int) -> np.ndarray:
    return _colors(rng, cls, 1)[0]


class _Canvas:
    """Label map + float image; ``paint`` draws a class with a colour/texture over a mask."""

    def __init__(self, h: int, w: int) -> None:
        self.label = np.full((h, w), SKY, dtype=np.uint8)
        self.img = np.zeros((h, w, 3), dtype=np.float32)

    def paint(self, mask: np.ndarray, cls: int, color: np.ndarray, shade: np.ndarray | float = 1.0
              ) -> None:
        if not mask.any():
            return
        self.label[mask] = cls
        pix = color[None, :] * (shade[mask][:, None] if isinstance(shade, np.ndarray) else shade)
        self.img[mask] = pix

    def view(self, sl: tuple[slice, slice]) -> _Canvas:
        """A canvas sharing memory with a rectangular window of this one."""
        sub = _Canvas.__new__(_Canvas)
        sub.label, sub.img = self.label[sl], self.img[sl]
        return sub


def _render(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Render one scene; returns (uint8 HxWx3 image, uint8 HxW labels)."""
    aspect = w / h
    px = 1.0 / h  # one output pixel in normalised units (image height = 1)

    # Camera: zoom, roll, shift. Output pixel -> scene coordinates (x in [0, aspect], y in [0, 1]).
    zoom = rng.uniform(1.0, 2.2)
    roll = np.deg2rad(rng.uniform(-15, 15))
    jj, ii = np.meshgrid((np.arange(w) + 0.5) * px, (np.arange(h) + 0.5) * px)
    ox, oy = (jj - aspect / 2) / zoom, (ii - 0.5) / zoom
    slack = (1 - 1 / zoom) / 2
    cx = aspect / 2 + rng.uniform(-slack, slack) * aspect
    cy = 0.5 + rng.uniform(-slack, slack)
    c, s = np.cos(roll), np.sin(roll)
    X = (cx + c * ox - s * oy).astype(np.float32)
    Y = (cy + s * ox + c * oy).astype(np.float32)
    dif = procedural.DIFFICULTY
    min_w = dif.min_width_px * px / zoom  # the thinnest any part is drawn, in scene units

    cv = _Canvas(h, w)
    y_h = rng.uniform(0.25, 0.62)  # horizon
    vx = rng.uniform(0.3, 0.7) * aspect  # vanishing point
    d = Y - y_h

    # Sky: gradient + clouds.
    sky = _color(rng, SKY)
    cv.paint(np.ones_like(d, bool), SKY,
             sky, 1.0 + 0.25 * d + 0.12 * _value_noise(rng, X, Y, rng.uniform(3, 8)))

    # Far skyline just above the horizon: piecewise-constant buildings / tree lines.
    edges = np.cumsum(rng.uniform(0.04, 0.3, 40)) - 0.5
    tops = y_h - rng.uniform(0.0, 0.3, 40) * rng.uniform(0.3, 1.0)
    kinds = rng.choice([BUILDING, VEGETATION, -1], 40, p=[0.55, 0.3, 0.15])
    seg = np.clip(np.searchsorted(edges, X), 0, 39)
    leaf = _value_noise(rng, X, Y, rng.uniform(40, 90))  # shared by tree lines and crowns
    top = tops[seg] + np.where(kinds[seg] == VEGETATION, 0.02 * leaf, 0.0)
    far = (Y >= top) & (d < 0.02) & (kinds[seg] >= 0)
    for cls in (BUILDING, VEGETATION):
        col = _color(rng, cls) * 0.85
        cv.paint(far & (kinds[seg] == cls), cls, col, 1.0 + 0.2 * leaf)

    # Ground: lateral world position Xw (camera heights) from the one-point perspective.
    ground = d > 0.004
    dd = np.maximum(d, 1e-4)
    Xw = (X - vx) / dd
    Zw = 1.0 / dd
    road_c = rng.uniform(-1.0, 1.0)
    road_hw = rng.uniform(1.3, 3.5)
    sw = rng.uniform(0.6, 2.0)
    lat = np.abs(Xw - road_c)
    # beyond the sidewalk, per side
    side_kind = rng.choice([SIDEWALK, TERRAIN], 2, p=[1 - dif.terrain_p, dif.terrain_p])
    beyond_kind = np.where(Xw < road_c, side_kind[0], side_kind[1])
    grain = _value_noise(rng, X, Y, rng.uniform(30, 70))
    tcol = _color(rng, TERRAIN)
    m_terrain = ground & (lat >= road_hw + sw) & (beyond_kind == TERRAIN)
    cv.paint(m_terrain, TERRAIN, tcol, 1.0 + 0.25 * grain)
    scol = _color(rng, SIDEWALK)
    tiles = rng.uniform(0.3, 0.8)
    joints = ((Xw / tiles) % 1 < 0.12) | ((Zw / tiles) % 1 < 0.12 * np.clip(Zw, 1, 8))
    m_sw = ground & (lat >= road_hw) & ~m_terrain
    cv.paint(m_sw, SIDEWALK, scol, np.where(joints, 0.82, 1.0) + 0.1 * grain)
    rcol = _color(rng, ROAD)
    dash = rng.uniform(1.5, 4.0)
    marks = (np.abs(Xw - road_c) < 0.07) & ((Zw / dash) % 1 < 0.5)
    if rng.random() < 0.5:  # lane edge lines
        marks |= np.abs(lat - (road_hw - 0.2)) < 0.06
    if rng.random() < 0.3:  # zebra crossing band
        z0 = rng.uniform(3, 12)
        marks |= (np.abs(Zw - z0) < 0.8) & ((Xw / 0.5) % 1 < 0.5)
    road = ground & (lat < road_hw)
    cv.paint(road, ROAD, rcol, np.where(marks, 2.2, 1.0) + 0.12 * grain)
    cv.img[road & marks] = np.minimum(cv.img[road & marks], 245)

    # Facades on both sides: wall at lateral distance D; depth segments with heights or gaps.
    for side in (-1, 1):
        if rng.random() < 0.12:
            continue
        set_back = side_kind[0 if side < 0 else 1] == TERRAIN  # leave a visible terrain strip
        D = road_hw + sw + (rng.uniform(*dif.terrain_width) if set_back else 0.0)
        xw = road_c + side * D
        t = (X - vx) / xw  # = 1/Z of the wall point seen at this pixel (if positive)
        nseg = 16
        zb = 1.0 + np.cumsum(rng.uniform(2.0, 10.0, nseg))
        present = rng.random(nseg) < 0.8
        hb = rng.uniform(2.5, 14.0, nseg)
        Zp = 1.0 / np.maximum(t, 1e-4)
        k = np.clip(np.searchsorted(zb, Zp), 0, nseg - 1)
        hgt = (y_h + t - Y) / np.maximum(t, 1e-4)  # height above ground on the wall
        wall = (t > 1.0 / zb[-1]) & present[k] & (hgt >= 0) & (hgt <= hb[k])
        wz = rng.uniform(1.2, 3.0, nseg)
        wh = rng.uniform(1.8, 3.0, nseg)
        win = (((Zp / wz[k]) % 1 > 0.35) & ((hgt / wh[k]) % 1 > 0.35) & (hgt > 1.5)
               & (hgt < hb[k] - 0.6) & (rng.random(nseg) < 0.85)[k])
        cols = _colors(rng, BUILDING, nseg)
        wcol = _color(rng, SKY) * rng.uniform(0.3, 0.9)
        shade = 1.0 + 0.08 * grain + (0.15 if side > 0 else -0.1)
        if wall.any():
            cv.label[wall] = BUILDING
            pix = cols[k[wall]] * shade[wall][:, None]
            pix[win[wall]] = wcol
            cv.img[wall] = pix

    # Objects in world coordinates, drawn far to near.
    objs: list[tuple[float, str, float]] = []
    for _ in range(rng.integers(0, 9)):
        lane = road_c + rng.uniform(-road_hw + 0.6, road_hw - 0.6)
        objs.append((rng.uniform(2.5, dif.max_depth[0]), "car", lane))
    for _ in range(rng.integers(0, 9)):
        on_road = rng.random() < 0.2
        off = rng.uniform(-road_hw, road_hw) if on_road else rng.choice([-1, 1]) * (
            road_hw + rng.uniform(0.2, sw))
        objs.append((rng.uniform(2.0, dif.max_depth[1]), "person", road_c + off))
    for _ in range(rng.integers(1, 7)):
        off = rng.choice([-1, 1]) * (road_hw + rng.uniform(0.1, 0.5))
        objs.append((rng.uniform(2.0, dif.max_depth[2]), "pole", road_c + off))
    for _ in range(rng.integers(0, 7)):
        off = rng.choice([-1, 1]) * (road_hw + sw * rng.uniform(0.3, 1.3))
        objs.append((rng.uniform(2.0, dif.max_depth[3]), rng.choice(["tree", "bush"]), road_c + off))
    objs.sort(key=lambda o: -o[0])

    # Objects only touch a small window: map their scene bounding box to output pixels.
    extent = {"car": (0.8, 1.4), "person": (0.4, 1.3), "pole": (1.3, 5.5), "tree": (3.7, 8.5),
              "bush": (1.9, 2.3)}

    def window(x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice]:
        sx = np.array([x0, x1, x0, x1]) - cx
        sy = np.array([y0, y0, y1, y1]) - cy
        cols = (aspect / 2 + zoom * (c * sx + s * sy)) / px - 0.5
        rows = (0.5 + zoom * (-s * sx + c * sy)) / px - 0.5
        r0, r1 = max(int(np.floor(rows.min())) - 1, 0), min(int(np.ceil(rows.max())) + 2, h)
        c0, c1 = max(int(np.floor(cols.min())) - 1, 0), min(int(np.ceil(cols.max())) + 2, w)
        return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))

    for Z, kind, xw in objs:
        t = 1.0 / Z
        ox_, yb = vx + xw * t, y_h + t  # footprint in scene coords
        bw, bh = extent[kind]
        pad = 2 * min_w
        sl = window(ox_ - bw * t - pad, ox_ + bw * t + pad, yb - bh * t - pad, yb + 0.1 * t + pad)
        if sl[0].start == sl[0].stop or sl[1].start == sl[1].stop:
            continue  # off screen
        full = cv
        cv = full.view(sl)
        gr, lf, gd = grain[sl], leaf[sl], ground[sl]
        dx, dy = X[sl] - ox_, yb - Y[sl]  # dy: height above the footprint in scene units
        if kind == "car":
            wd, ht = rng.uniform(1.0, 1.5) * t, rng.uniform(0.8, 1.3) * t
            col = _color(rng, CAR)
            body = (np.abs(dx) < wd / 2) & (dy > 0.12 * ht) & (dy < 0.62 * ht)
            taper = 0.45 - 0.15 * (dy - 0.62 * ht) / (0.38 * ht)
            cabin = (dy >= 0.62 * ht) & (dy < ht) & (np.abs(dx) < taper * wd)
            wheels = (dy >= -0.01 * t) & (dy <= 0.14 * ht) & (np.abs(dx) < wd / 2) & (
                np.abs(dx) > wd / 2 - max(0.22 * wd, min_w))
            glass = cabin & (dy < 0.92 * ht) & (np.abs(dx) < (taper - 0.06) * wd)
            shadow = (np.abs(dx) < wd * 0.55) & (np.abs(dy) < 0.06 * t) & gd
            cv.img[shadow] *= 0.55
            cv.paint(body | cabin, CAR, col, 1.0 + 0.1 * (dy / ht) + 0.05 * gr)
            cv.img[glass] = _color(rng, SKY) * 0.4
            cv.paint(wheels, CAR, np.array([25.0, 25.0, 28.0]))
            if rng.random() < 0.7:  # tail lights
                lights = body & (np.abs(dy - 0.45 * ht) < 0.06 * ht) & (np.abs(dx) > 0.32 * wd)
                cv.img[lights] = (200, 30, 30)
        elif kind == "person":
            ht = rng.uniform(*dif.person_height) * t
            wd = max(dif.person_width * t, min_w)
            head_r = max(0.08 * ht, min_w / 2)
            torso = (np.abs(dx) < wd / 2) & (dy > 0.45 * ht) & (dy < ht - 2 * head_r)
            leg_w = max(wd * 0.35, min_w)
            legs = (dy >= 0) & (dy <= 0.47 * ht) & (np.abs(np.abs(dx) - wd * 0.22) < leg_w / 2)
            head = dx ** 2 + (dy - ht + head_r) ** 2 < head_r ** 2
            cv.paint(torso, PERSON, _color(rng, PERSON), 1.0 + 0.08 * gr)
            cv.paint(legs, PERSON, _color(rng, PERSON))
            skin = np.array([rng.uniform(90, 230)] * 3) * np.array([1.0, 0.8, 0.65])
            cv.paint(head, PERSON, skin)
        elif kind == "pole":
            ht = rng.uniform(2.5, 5.0) * t
            wd = max(dif.pole_width * t, min_w)
            col = _color(rng, POLE)
            shaft = (np.abs(dx) < wd / 2) & (dy >= 0) & (dy <= ht)
            cv.paint(shaft, POLE, col, 1.0 + 0.15 * np.sign(dx))
            r = rng.random()
            if r < 0.35:  # sign plate (traffic signs count as pole here)
                sr = max(0.3 * t, 1.5 * min_w)
                sign = (np.abs(dx) < sr) & (np.abs(dy - ht + sr) < sr)
                cv.paint(sign, POLE, _color(rng, CAR))
            elif r < 0.6:  # street-lamp arm
                arm = max(0.08 * t, min_w)
                reach = rng.uniform(0.4, 1.2) * t * -np.sign(xw - road_c)
                lo, hi = sorted((0.0, reach))
                m = (dx >= lo) & (dx <= hi) & (np.abs(dy - ht) < arm / 2)
                cv.paint(m, POLE, col)
        else:  # tree or bush (vegetation; trunks look like poles)
            col = _color(rng, VEGETATION)
            if kind == "tree":
                th = rng.uniform(1.2, 2.5) * t
                tw = max(0.14 * t, min_w)
                trunk = (np.abs(dx) < tw / 2) & (dy >= 0) & (dy <= th + 0.2 * t)
                tc = np.asarray(_TRUNK[rng.integers(len(_TRUNK))], np.float32)
                cv.paint(trunk, VEGETATION, tc, 1.0 + 0.1 * np.sign(dx))
                cr = rng.uniform(0.8, 2.0) * t
                cy_ = th + cr * 0.8
            else:
                cr = rng.uniform(0.4, 1.0) * t
                cy_ = cr * 0.6
            rr = (dx / (cr * rng.uniform(0.8, 1.3))) ** 2 + ((dy - cy_) / cr) ** 2
            crown = rr < 1.0 + 0.35 * lf
            cv.paint(crown, VEGETATION, col, 1.0 + 0.3 * lf - 0.15 * (dy - cy_) / cr)
        cv = full

    return _finish(rng, cv.img, X, Y), cv.label


def render_image(seed: int, split: str, index: int, height: int = 64, width: int = 128
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Render image ``index`` of ``split``; depends only on (seed, split, index, size)."""
    rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
    return _render(rng, height, width)


def _save_png(arr: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG", optimize=False, compress_level=1)


_CHUNK = 100


def _write_chunk(task: tuple) -> None:
    """Render and write images [start, stop) of one split."""
    root, seed, split, start, stop, height, width, source_size, img_dir, ann_dir = task
    for i in range(start, stop):
        if split.startswith("source_"):
            img, label = render_source(seed, split, i, source_size)
            name = SOURCE_CLASSES[label]
            _save_png(img, Path(root) / img_dir / name / f"{name}_{i:06d}.png")
            continue
        img, lab = render_image(seed, split, i, height, width)
        _save_png(img, Path(root) / img_dir / f"{i:06d}.png")
        if ann_dir:
            _save_png(lab, Path(root) / ann_dir / f"{i:06d}.png")


def _expected_files(split: str, n: int) -> set[str]:
    """The files (relative to the split's image folder) that ``n`` images of ``split`` make."""
    if split.startswith("source_"):
        return {f"{SOURCE_CLASSES[source_label(i)]}/{SOURCE_CLASSES[source_label(i)]}_{i:06d}.png"
                for i in range(n)}
    return {f"{i:06d}.png" for i in range(n)}


def generate_builtin(root: Path, seed: int = 0, n_train: int = 500, n_val: int = 100,
                     n_unlabelled: int = 0, n_source_train: int = 3600, n_source_val: int = 480,
                     height: int = 64, width: int = 128, source_size: int = SOURCE_SIZE,
                     n_dev: int = 0, dev_seed: int = 1, workers: int | None = None) -> Path:
    """Write the built-in dataset under ``root`` (MMSeg layout); ``meta.json`` is written last.

    Target (street scenes): ``img_dir/{train,val,dev,unlabelled}/NAME.png`` and
    ``ann_dir/{train,val,dev}/NAME.png``; ``dev`` is the tuning stage's development split,
    ``n_dev`` scenes rendered from their own ``dev_seed`` (none of them is a train or val scene). Source (object-centric classification, the miniature's
    ImageNet, :mod:`ddep.data.source`): ``source/{train,val}/CLASS/CLASS_NNNNNN.png``, class
    folders as in an ImageNet tree. If ``meta.json`` already records the same parameters the
    call is a no-op. ``workers`` (default: up to 2 processes) never changes the output: every
    image has its own RNG stream.
    """
    root = Path(root)
    params = dict(seed=seed, n_train=n_train, n_val=n_val, n_unlabelled=n_unlabelled,
                  n_source_train=n_source_train, n_source_val=n_source_val, height=height,
                  width=width, source_size=source_size, n_dev=n_dev, dev_seed=dev_seed)
    meta_path = root / "meta.json"
    if meta_path.exists():
        try:
            old = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
        if old.get("params") == params and old.get("format_version") == FORMAT_VERSION:
            return root
        meta_path.unlink()  # the tree is incomplete until the new meta.json lands

    labelled = DATASET_DEFS["builtin"].splits  # where the dataset config reads them
    dirs = {**{s: (labelled[s].img_path, labelled[s].seg_map_path) for s in ("train", "val", "dev")},
            "unlabelled": ("img_dir/unlabelled", None), "source_train": (SOURCE_DIRS["train"], None),
            "source_val": (SOURCE_DIRS["val"], None)}
    counts = {"train": n_train, "val": n_val, "dev": n_dev, "unlabelled": n_unlabelled,
              "source_train": n_source_train, "source_val": n_source_val}
    for split, (img_dir, ann_dir) in dirs.items():
        keep = _expected_files(split, counts[split])
        for sub in filter(None, (img_dir, ann_dir)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            for stale in (root / sub).rglob("*.png"):  # left over from an earlier, larger run
                if stale.relative_to(root / sub).as_posix() not in keep:
                    stale.unlink()
    seeds = dict.fromkeys(counts, seed) | {"dev": dev_seed}
    tasks = [(str(root), seeds[split], split, start, min(start + _CHUNK, n), height, width, source_size,
              *dirs[split]) for split, n in counts.items() for start in range(0, n, _CHUNK)]
    workers = min(workers or min(2, os.cpu_count() or 1), max(len(tasks), 1))
    if workers > 1:
        # fork: no re-import of the parent's (possibly heavy) modules in the children
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with mp.get_context(method).Pool(workers) as pool:
            pool.map(_write_chunk, tasks, chunksize=1)
            pool.close()  # workers exit on their own: the with block's terminate() can kill one holding
            pool.join()   # the task queue's lock and then wait forever on another (seen in CI)
    else:
        for task in tasks:
            _write_chunk(task)

    meta = dict(format_version=FORMAT_VERSION, params=params, classes=list(BUILTIN_CLASSES),
                palette=[list(p) for p in BUILTIN_PALETTE], ignore_index=IGNORE_INDEX,
                counts=counts, source_classes=list(SOURCE_CLASSES),
                source_dirs=dict(SOURCE_DIRS))
    write_json(meta_path, meta, indent=1, sort_keys=True)
    return root
