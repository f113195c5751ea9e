"""Every column of every CSV the results are written in has a one-line meaning (ddep/run_file.py's OUTPUT_COLUMNS),
and docs/outputs.md shows exactly those meanings."""
import json
import math
import shutil
from pathlib import Path

import pandas as pd

from ddep.analysis import COMPARE_CSV_NAMES
from ddep.analysis.aggregate import read_csv
from ddep.analysis.compare import compare_results
from ddep.analysis.results import write_results
from ddep.analysis.tuning import write_tuning
from ddep.readme import fill_readme
from ddep.run_file import OUTPUT_COLUMNS, column_meaning

REPO = Path(__file__).resolve().parents[1]


def undocumented(csv: Path) -> list[str]:
    """The columns of `csv` (``{table}.csv``) without a meaning in OUTPUT_COLUMNS."""
    assert csv.stem in OUTPUT_COLUMNS, f"{csv}: no table {csv.stem!r} in OUTPUT_COLUMNS (ddep/run_file.py)"
    return [c for c in pd.read_csv(csv, nrows=0).columns if column_meaning(csv.stem, c) is None]


def run_jsons_like_the_committed_ones(folder: Path, extra: dict | None = None,
                                     runs_csv: Path = REPO / "results/runs.csv") -> list[Path]:
    """Per-run JSONs as `ddep finetune` writes them, rebuilt from a committed runs.csv (the default run's)."""
    paths = []
    for i, row in read_csv(runs_csv).iterrows():
        rec = {k: v for k, v in row.items() if not k.startswith(("iou_", "version_")) and k != "json_path"}
        rec["noise_conditioning"] = rec["noise_conditioning"] == "on"
        rec["pretrained"] = "" if isinstance(rec["pretrained"], float) else rec["pretrained"]
        rec["per_class_iou"] = {k[4:]: (None if math.isnan(v) else v) for k, v in row.items() if k.startswith("iou_")}
        rec["versions"] = {k[8:]: v for k, v in row.items() if k.startswith("version_")}
        path = folder / f"run{i}.json"
        path.write_text(json.dumps({**rec, **(extra or {})}, default=lambda x: x.item()))
        paths.append(path)
    return paths


def pretraining_jsons(folder: Path) -> list[Path]:
    out = []
    for i, row in pd.read_csv(REPO / "results/pretrainings.csv").iterrows():
        supervised = row["stage"] == "supervised"
        rec = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        rec |= {"source" if supervised else "unlabelled": rec.pop("images")}
        (path := folder / f"pretraining{i}.json").write_text(json.dumps(rec, default=lambda x: x.item()))
        out.append(path)
    return out


# a tuning grid over every tunable axis, so that every documented tuning column is written
TUNING_GRID = {"lr": [0.001, 0.003], "encoder_lr_mult": [1.0], "iters": [500], "batch_size": [4]}


def tuning_jsons(folder: Path) -> list[Path]:
    """Tuning runs as `ddep finetune --tuning-point` writes them: two points, the second failed."""
    out = []
    for i, lr in enumerate(TUNING_GRID["lr"]):
        point = dict(lr=lr, encoder_lr_mult=1.0, iters=500, batch_size=4)
        status = dict(status="failed", reason="NonFiniteLossError: loss is nan") if i else dict(status="ok")
        rec = dict(dataset="builtin", model="transunet_tiny", label_fraction="1/30", arm="none", seed=100,
                   mIoU=None if i else 30.5, training=dict(final_loss=0.4), git_commit="abc",
                   tuning=dict(point=point, eval_split="dev", **status))
        (path := folder / f"tuning{i}.json").write_text(json.dumps(rec))
        out.append(path)
    return out


def test_every_committed_csv_column_has_a_meaning():
    csvs = sorted(REPO.glob("results/**/*.csv"))
    assert {c.stem for c in csvs} >= {"runs", "summary", "paired", "claims", "pretrainings"}
    missing = {str(c.relative_to(REPO)): cols for c in csvs if (cols := undocumented(c))}
    assert not missing, f"columns without a meaning in ddep/run_file.py's OUTPUT_COLUMNS: {missing}"


def test_every_column_the_code_writes_has_a_meaning_and_a_new_one_fails(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    write_results(run_jsons_like_the_committed_ones(runs), tmp_path / "out", quiet=True,
                  pretraining_paths=pretraining_jsons(runs))
    compare_results(REPO / "results", tmp_path / "out", out=tmp_path / "out")
    write_tuning(tuning_jsons(runs), TUNING_GRID, [100], str(tmp_path / "out"), str(tmp_path / "selection.yaml"), {})
    # config/arms.yaml's runs: arms of the config's own, so the comparisons are written too
    (arm_runs := tmp_path / "arm_runs").mkdir()
    write_results(run_jsons_like_the_committed_ones(arm_runs, runs_csv=REPO / "results/arms/runs.csv"),
                  tmp_path / "arms", quiet=True)
    written = sorted([*(tmp_path / "out").glob("*.csv"), tmp_path / "arms/comparisons.csv"])
    assert sorted(c.stem for c in written) == sorted([*OUTPUT_COLUMNS]) == sorted(
        ["runs", "summary", "paired", "claims", "pretrainings", "tuning", "comparisons", *COMPARE_CSV_NAMES])
    assert {c.name: undocumented(c) for c in written} == {c.name: [] for c in written}
    # every documented column is one the code writes (no stale line), families matched by their prefix
    for csv in written:
        header = pd.read_csv(csv, nrows=0).columns
        stale = [k for k in OUTPUT_COLUMNS[csv.stem]
                 if not any(c == k or (k.endswith("*") and c.startswith(k[:-1])) for c in header)]
        assert not stale, f"{csv.name}: documented but not written: {stale}"
    # a run file with a field the contract does not know becomes a column without a meaning: the check fails
    shutil.rmtree(runs)
    runs.mkdir()
    write_results(run_jsons_like_the_committed_ones(runs, {"learning_rate": 0.003}), tmp_path / "new", quiet=True)
    assert undocumented(tmp_path / "new/runs.csv") == ["learning_rate"]


def test_docs_outputs_md_is_generated_from_the_meanings(tmp_path):
    page = tmp_path / "outputs.md"
    shutil.copy(REPO / "docs/outputs.md", page)
    assert fill_readme(page, REPO) == ["ddep/run_file.py"]
    assert page.read_text() == (REPO / "docs/outputs.md").read_text(), "docs/outputs.md is stale: run `ddep readme`"
    text = page.read_text()
    for table, meanings in OUTPUT_COLUMNS.items():
        assert f"**`{table}.csv`**" in text
        assert all(f"| {meaning} |" in text for meaning in meanings.values())
