"""The tuning stage's results: its run JSONs -> ``tuning.csv`` (one row per cell x grid point x
development seed), a table of mean development mIoU per grid point with the selected one marked,
the selection file (:mod:`ddep.tuning`), and a figure from the CSV: development mIoU against each
grid axis, one line per arm."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import yaml

from ddep.io import atomic_write_text
from ddep.run_file import read_json
from ddep.tuning import RULE, grid_points, point_slug, select, selection_document, failed

from . import csv_path, figure_paths, table_paths
from .aggregate import read_csv
from .common import in_paper_order

IDENTITY = ["dataset", "model", "label_fraction", "arm"]


def tuning_records(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """The tuning runs' JSONs, each with its grid point and status (ddep finetune --tuning-point)."""
    records = []
    for path in sorted({str(p) for p in paths}):
        data = read_json(path, "tuning run JSON")
        if not isinstance(data, dict) or "tuning" not in data:
            raise ValueError(f"{path}: not a tuning run (no `tuning` record): written by "
                             f"`ddep finetune --tuning-point ...`")
        records.append(dict(data, point=data["tuning"]["point"], json_path=path))
    return records


def tuning_table(records: list[dict], axes: list[str]) -> pd.DataFrame:
    """One row per run: identity, the grid point's values, seed, status, development mIoU."""
    rows = [{**{k: str(r[k]) for k in IDENTITY}, **{a: r["point"].get(a) for a in axes},
             "point": point_slug(r["point"]), "seed": int(r["seed"]),
             "status": "failed" if failed(r) else "ok", "mIoU": r.get("mIoU"),
             "final_loss": (r.get("training") or {}).get("final_loss"),
             "eval_split": r["tuning"].get("eval_split"), "reason": r["tuning"].get("reason", ""),
             "git_commit": r.get("git_commit", ""), "json_path": r["json_path"]} for r in records]
    return in_paper_order(pd.DataFrame(rows), by=[*IDENTITY, "point", "seed"]).reset_index(drop=True)


def write_tuning(paths: Iterable[str | os.PathLike], grid: dict, seeds: list[int], results_dir: str,
                 selection_path: str, dev_split_sha256: dict[str, str]) -> dict:
    """tuning.csv, tables/tuning.md and the selection file from the tuning runs; returns the
    selection document."""
    records = tuning_records(paths)
    points = grid_points(dict(grid=grid))
    chosen = select(records, points)
    table = tuning_table(records, list(grid))
    atomic_write_text(csv_path(results_dir, "tuning"), table.to_csv(index=False))
    commits = sorted({str(r.get("git_commit", "")) for r in records} - {""})
    provenance = dict(rule=RULE, grid=grid, development_seeds=list(seeds),
                      development_split_sha256=dev_split_sha256, git_commits=commits,
                      runs=len(records), failed=int((table["status"] == "failed").sum()))
    doc = selection_document(chosen, provenance)
    header = ("# The fine-tune setting of every cell, selected by the tuning stage (ddep.tuning.RULE);\n"
              "# the held-out fine-tunes read it. Written by `snakemake tune`: do not edit by hand.\n")
    atomic_write_text(selection_path, header + yaml.safe_dump(doc, sort_keys=False, width=100))
    atomic_write_text(table_paths(results_dir, "tuning")[0], tuning_markdown(table, chosen))
    return doc


def _means(table: pd.DataFrame) -> pd.DataFrame:
    ok = table.assign(mIoU=table["mIoU"].where(table["status"] == "ok"))
    return ok.groupby([*IDENTITY, "point"], sort=False).agg(
        mean=("mIoU", "mean"), n=("seed", "count"), failed=("status", lambda s: int((s == "failed").sum()))
    ).reset_index()


def tuning_markdown(table: pd.DataFrame, chosen: dict[tuple, dict]) -> str:
    """Mean development mIoU per cell (rows) and grid point (columns); the selected point in bold,
    a point with a failed seed shown as failed."""
    means = _means(table)
    picked = {cell: point_slug(c["setting"]) for cell, c in chosen.items()}
    means["cell"] = [" / ".join(str(x) for x in key) for key in means[IDENTITY].itertuples(index=False)]
    selected = [picked.get((r.dataset, r.model, r.label_fraction, r.arm)) == r.point for r in means.itertuples()]
    means["text"] = ["failed" if r.failed else f"**{r.mean:.2f}**" if sel else f"{r.mean:.2f}"
                     for r, sel in zip(means.itertuples(), selected)]
    wide = means.pivot(index="cell", columns="point", values="text").reindex(
        index=list(dict.fromkeys(means["cell"])), columns=list(dict.fromkeys(means["point"])))
    seeds = sorted(set(table["seed"]))
    caption = (f"Development mIoU (%), mean over development seeds {', '.join(map(str, seeds))}, on the "
               f"development split; rows: dataset / model / fraction / arm; columns: grid points. "
               f"Bold: the selected point. Rule: {RULE}")
    return f"**Tuning stage: development mIoU per grid point**\n\n{wide.to_markdown()}\n\n{caption}\n"


def tuning_figure(results_dir: str, figures_dir: str) -> list[Path]:
    """Development mIoU against each grid axis (the mean over the other axes' values and the
    seeds; band: min to max), one line per arm, a panel per axis x fraction."""
    from .figures import _title, arm_colours, save_figure
    from matplotlib.figure import Figure
    table = read_csv(csv_path(results_dir, "tuning"))
    axes = [c for c in table.columns if c not in {*IDENTITY, "point", "seed", "status", "mIoU", "final_loss",
                                                   "eval_split", "reason", "git_commit", "json_path"}]
    ok = table[table["status"] == "ok"]
    colours = arm_colours(ok["arm"])
    fractions = list(dict.fromkeys(table["label_fraction"]))
    fig = Figure(figsize=(3.6 * len(fractions), 2.8 * len(axes)), layout="constrained")
    panels = fig.subplots(len(axes), len(fractions), squeeze=False)
    for i, axis in enumerate(axes):
        for j, fraction in enumerate(fractions):
            ax = panels[i][j]
            at = ok[ok["label_fraction"] == fraction]
            for arm, rows in at.groupby("arm", sort=False):
                line = rows.groupby(axis)["mIoU"].agg(["mean", "min", "max"]).reset_index()
                ax.plot(line[axis], line["mean"], marker="o", color=colours[arm], label=arm)
                ax.fill_between(line[axis], line["min"], line["max"], color=colours[arm], alpha=0.12)
            if axis in ("lr",) or (at[axis] > 0).all() and at[axis].max() / max(at[axis].min(), 1e-12) >= 10:
                ax.set_xscale("log")
            ax.set_xlabel(axis)
            ax.set_ylabel("development mIoU (%)")
            ax.set_title(f"fraction {fraction}", fontsize=9)
            ax.legend(fontsize=7)
    fig.suptitle(_title(fig, "Tuning stage: development mIoU per grid axis (mean over the other axes and seeds; "
                             "band: min-max)"), fontsize=9)
    return save_figure(fig, figure_paths(figures_dir, "tuning"))
