"""docs/protocol.md: its "ddep does" column is what config/paper.yaml and the schedule and
dataset files say today, and it follows them when they change."""
from __future__ import annotations

import copy
import re
from pathlib import Path

from ddep.protocol import ROWS, SOURCES, load_paper_config, render

REPO = Path(__file__).resolve().parents[1]


def row(text: str, element: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"| {element} |"))
    return [cell.strip() for cell in line.split(" | ")]


def test_committed_protocol_page_is_what_the_files_make_today():
    committed = (REPO / "docs/protocol.md").read_text()
    assert committed == render(load_paper_config()), (
        "docs/protocol.md differs from config/paper.yaml and the schedule files: run "
        "`ddep protocol --out docs/protocol.md` and commit it")


def test_ddep_column_follows_the_config_and_schedules():
    config = load_paper_config()
    changed = copy.deepcopy(config)
    changed["denoising"]["sigma"] = 0.3
    changed["schedule"]["denoise"] = {"iters": 5000, "batch_size": 8}
    changed["datasets"]["ade20k"]["fractions"] = ["1/8"]
    changed["ablations"] = []
    before, after = render(config), render(changed)
    assert "σ = 0.2" in row(before, "noise level σ")[2] and "σ = 0.3" in row(after, "noise level σ")[2]
    pretraining = row(after, "pretraining schedule and batch")[2]
    assert "5,000 iterations x batch 8 per GPU x 4 GPU(s) = global batch 32" in pretraining
    assert "100,000 iterations x batch 16" in row(before, "pretraining schedule and batch")[2]
    for ds in changed["datasets"].values():  # one arm sized to its own plateau, on every dataset
        ds["denoise_schedule"] = {"ddep": {"iters": 20000, "lr": 3e-4}}
    pretraining = row(render(changed), "pretraining schedule and batch")[2]
    assert "5,000 iterations" in pretraining and "DDeP: 20,000 at lr 0.0003" in pretraining
    assert "ade20k: 1/8 (2,527)" in row(after, "label fractions")[2]  # ceil(20,210 / 8)
    assert "cityscapes: 1/30 (100), 1/16 (186)" in row(before, "label fractions")[2]
    assert row(after, "the σ study")[2] == "no ablations"
    assert "80,000 x batch 8 (`cityscapes_finetune.py`)" in row(before, "fine-tune schedule and batch")[2]


def test_every_row_cites_its_sources_or_says_not_stated():
    text = render(load_paper_config())
    for r in ROWS:
        cited = {k for group in re.findall(r"\[([A-Z](?:, [A-Z])*)\]", r.paper) for k in group.split(", ")}
        assert cited <= set(SOURCES) and (cited or "not stated" in r.paper), r.element
        assert r.key and r.why, r.element
    assert len([line for line in text.splitlines() if line.startswith("| ")]) == len(ROWS) + 1


def test_an_interval_sigma_is_not_called_fixed_and_fixed_rows_say_so():
    config = load_paper_config()
    drawn = copy.deepcopy(config)
    drawn["denoising"]["sigma"] = [0.2, 0.3]
    assert row(render(config), "noise level σ")[2] == "σ = 0.2, fixed"
    sigma = row(render(drawn), "noise level σ")[2]
    assert "U(0.2,0.3)" in sigma and "fixed" not in sigma
    text = render(config)
    marked = [r.element for r in ROWS if "fixed text" in row(text, r.element)[2]]
    assert marked == [r.element for r in ROWS if not callable(r.does)] == ["split sampling", "statistics"]
