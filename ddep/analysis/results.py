"""The aggregate step: per-run JSONs -> runs/summary/paired/claims CSVs, the tables, the claims and the pretraining
jobs' table. Chains :mod:`.aggregate`, :mod:`.tables` and :mod:`.claims`, which know nothing of each other."""

import os
from collections.abc import Iterable
from pathlib import Path

from . import COMPARISONS, CSV_NAMES, csv_path, table_paths
from .aggregate import (load_runs, paired_differences, pretraining_markdown, pretraining_table, summarise,
                        unlearnt_starts)
from .claims import COMPARISONS_CAPTION, claims_table, comparisons_table, render_claims_markdown
from .common import NoiseSetting, atomic_write_text, choose_default_setting
from .tables import write_tables


def write_results(json_paths: Iterable[str | os.PathLike], out_dir: str | os.PathLike,
                  default_noise: NoiseSetting | None = None, quiet: bool = False,
                  pretraining_paths: Iterable[str | os.PathLike] = ()) -> str:
    """Write the CSVs, ``tables/`` and the pretraining jobs' table under `out_dir`; print (unless `quiet`) and return
    a short summary."""
    out, runs = Path(out_dir), load_runs(json_paths)
    summary = summarise(runs)
    # DeP/DDeP's setting in the label-efficiency table and the claims, the ablations' baseline
    default = default_noise or choose_default_setting(summary)
    paired, claims = paired_differences(runs, default), claims_table(runs, default)
    for name, table in zip(CSV_NAMES, (runs, summary, paired, claims)):
        atomic_write_text(csv_path(out, name), table.to_csv(index=False))
    pretraining_paths = list(pretraining_paths)
    marks = unlearnt_starts(runs, pretraining_paths)
    atomic_write_text(*table_paths(out, "claims"), render_claims_markdown(claims, default, marks=marks))
    table_files, notes = write_tables(summary, paired, out, default)
    comparisons = comparisons_table(runs, default)
    if len(comparisons):  # only a sweep with arms of its own has them
        atomic_write_text(csv_path(out, COMPARISONS), comparisons.to_csv(index=False))
        atomic_write_text(*table_paths(out, COMPARISONS), render_claims_markdown(
            comparisons, default, "your arms against the presets", COMPARISONS_CAPTION, marks))
    if pretraining_paths:
        pretrainings = pretraining_table(pretraining_paths)
        atomic_write_text(csv_path(out, "pretrainings"), pretrainings.to_csv(index=False))
        atomic_write_text(*table_paths(out, "pretrainings"), pretraining_markdown(pretrainings))
    verdicts = "".join(f", {n} {v}" for v, n in claims["verdict"].value_counts().items())
    datasets = runs["dataset"].nunique()
    text = "\n".join([f"aggregated {len(runs)} run(s) into {len(summary)} cell(s) over {datasets} dataset(s) -> {out}",
                      f"paired comparisons: {len(paired)} setting(s)",
                      f"tables: {len(table_files) + 1} file(s) in {out / 'tables'}",
                      f"claims: {len(claims)} row(s){verdicts}; {int(claims['fragile'].sum())} fragile",
                      *([f"comparisons (your arms): {len(comparisons)} row(s)"] if len(comparisons) else []),
                      *(f"  note: {n}" for n in notes),
                      *(f"  marked: {ds}, {model}: {m}" for (ds, model), m in marks.items())])
    if not quiet:
        print(text)
    return text
