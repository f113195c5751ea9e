"""Label-fraction splits as MMSeg ``ann_file`` lists (one image stem per line).

A split depends only on (dataset name, fraction, seed, the set of stems): stems are ordered by
``sha256(f"{dataset}:{seed}:{stem}")`` and the first ``n`` are taken, so splits are identical on
every machine and Python version, need no global RNG, and are nested across fractions per seed.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

from ddep.io import atomic_write_text
from ddep.sweep import parse_fraction  # noqa: F401  (re-exported: the one fraction parser)


def split_size(fraction: str | float | int | Fraction, n_total: int) -> int:
    """Number of labelled images for a fraction of ``n_total`` (or a count, capped at n_total).

    Fractions round *up* (exact rational arithmetic): this reproduces the counts used in the
    semi-supervised Cityscapes literature, 2975 -> 100/186/372/744/1488 for 1/30..1/2 (round-half
    would give 99 for 1/30).
    """
    f = parse_fraction(fraction)
    if isinstance(f, int):
        if f > n_total:
            raise ValueError(f"asked for {f} labelled images but only {n_total} exist")
        return f
    return max(1, min(n_total, math.ceil(f * n_total)))


def _rank(dataset: str, seed: int | str, stem: str) -> str:
    return hashlib.sha256(f"{dataset}:{seed}:{stem}".encode()).hexdigest()


def select_split(stems: Iterable[str], dataset: str, fraction: str | float | int | Fraction,
                 seed: int) -> list[str]:
    """The labelled subset for (dataset, fraction, seed), returned sorted by stem."""
    pool = sorted(set(stems))
    if not pool:
        raise ValueError(f"no training images to split for dataset {dataset!r}")
    n = split_size(fraction, len(pool))
    order = sorted(pool, key=lambda s: (_rank(dataset, seed, s), s))
    return sorted(order[:n])


def development_stems(stems: Iterable[str], dataset: str, n: int) -> list[str]:
    """A dataset's development slice: ``n`` train images fixed by ``sha256(f"{dataset}:development:
    {stem}")`` alone (no seed: every seed and fraction leaves out the same images), returned sorted.
    The tuning stage evaluates on it; :func:`select_split` never labels it."""
    pool = sorted(set(stems))
    if not 0 < n < len(pool):
        raise ValueError(f"datasets.{dataset}.development.n_images = {n}: needs 0 < n < the {len(pool)} "
                         f"train images (the rest are what label fractions are taken of)")
    order = sorted(pool, key=lambda s: (_rank(dataset, "development", s), s))
    return sorted(order[:n])


def write_split(path: str | os.PathLike, stems: Iterable[str]) -> Path:
    """Write stems one per line (MMSeg ``ann_file``), atomically."""
    return atomic_write_text(path, "".join(f"{s}\n" for s in stems))


def list_train_stems(name, data_root: str | os.PathLike) -> list[str]:
    """All training-image stems of a dataset (a name of the table or a
    :class:`ddep.data.DatasetDef`; relative to its image prefix, suffix removed)."""
    from ddep.data.table import get_dataset_def  # the one table of dataset definitions

    d = get_dataset_def(name)
    split = d.splits["train"]
    root = Path(data_root)
    if split.ann_file:
        lines = (root / split.ann_file).read_text().splitlines()
        return sorted({ln.strip() for ln in lines if ln.strip()})
    img_dir = root / split.img_path
    stems = [str(p.relative_to(img_dir).as_posix())[: -len(d.img_suffix)]
             for p in img_dir.rglob(f"*{d.img_suffix}") if p.is_file()]
    return sorted(stems)
