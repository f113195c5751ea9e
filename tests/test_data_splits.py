"""Label-fraction splits: counts, nesting, seeds, pinned content, parsing."""

from __future__ import annotations

import hashlib
from fractions import Fraction

import pytest

from ddep.data import list_train_stems, parse_fraction, select_split, split_size, write_split

CITIES = ["aachen", "bochum", "bremen", "cologne", "darmstadt"]
CITYSCAPES_STEMS = [f"{CITIES[i % 5]}/{CITIES[i % 5]}_{i:06d}_000019" for i in range(2975)]
FRACTIONS = ["1/30", "1/16", "1/8", "1/4", "1/2"]


def test_cityscapes_literature_counts():
    assert [split_size(f, 2975) for f in FRACTIONS] == [100, 186, 372, 744, 1488]
    assert [len(select_split(CITYSCAPES_STEMS, "cityscapes", f, 0)) for f in FRACTIONS] == [
        100, 186, 372, 744, 1488]


@pytest.mark.parametrize("x,expected", [
    ("1/8", Fraction(1, 8)), ("0.05", Fraction(1, 20)), (0.05, Fraction(1, 20)),
    ("100", 100), (100, 100), (" 1/30 ", Fraction(1, 30)), ("all", Fraction(1)), (1.0, Fraction(1)),
])
def test_parse_fraction(x, expected):
    got = parse_fraction(x)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("bad", ["0", "-1/8", "3/2", "1.5", "abc", 0, 0.0, True, "1/0"])
def test_parse_fraction_rejects(bad):
    with pytest.raises(ValueError):
        parse_fraction(bad)


def test_sizes_small_sets():
    assert split_size("0.05", 100) == 5
    assert split_size("1/1000", 10) == 1  # at least one image
    assert split_size(7, 100) == 7
    with pytest.raises(ValueError):
        split_size(101, 100)


def test_nested_across_fractions_for_one_seed():
    subsets = [set(select_split(CITYSCAPES_STEMS, "cityscapes", f, 3)) for f in FRACTIONS]
    assert all(a < b for a, b in zip(subsets, subsets[1:]))
    assert set(select_split(CITYSCAPES_STEMS, "cityscapes", 50, 3)) < subsets[0]


def test_seed_dataset_and_order_independence():
    a = select_split(CITYSCAPES_STEMS, "cityscapes", "1/8", 0)
    assert a != select_split(CITYSCAPES_STEMS, "cityscapes", "1/8", 1)
    assert a != select_split(CITYSCAPES_STEMS, "ade20k", "1/8", 0)
    assert a == select_split(list(reversed(CITYSCAPES_STEMS)), "cityscapes", "1/8", 0)
    assert a == sorted(a)


def test_split_file_content_is_pinned(tmp_path):
    path = write_split(tmp_path / "splits" / "cityscapes_1-30_seed0.txt",
                       select_split(CITYSCAPES_STEMS, "cityscapes", "1/30", 0))
    text = path.read_text()
    assert text.splitlines()[0] == "aachen/aachen_000245_000019"
    assert hashlib.sha256(text.encode()).hexdigest() == (
        "5629244fe9fe7b6158a7750a6fc88a9bf6ef0a9604ca7dbb8aa032c02b9fbd39")
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_list_train_stems(tmp_path):
    for stem in CITYSCAPES_STEMS[:4]:
        p = tmp_path / "leftImg8bit" / "train" / f"{stem}_leftImg8bit.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    assert list_train_stems("cityscapes", tmp_path) == sorted(CITYSCAPES_STEMS[:4])
    lists = tmp_path / "voc" / "ImageSets" / "SegmentationContext"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("2008_000002\n2008_000003\n\n")
    assert list_train_stems("pascal_context59", tmp_path / "voc") == ["2008_000002", "2008_000003"]
