"""Aggregate per-run JSON files into tidy CSVs: runs, per-cell summary, paired differences,
claims, tables.

Input contract (one JSON per fine-tuning run)::

    {"dataset": "builtin", "label_fraction": "1/30", "n_labelled": 10, "arm": "ddep",
     "sigma": "0.2", "formulation": "unscaled", "target": "eps", "noise_conditioning": false,
     "seed": 0, "preset": "tiny",
     "mIoU": 41.3, "aAcc": 80.1, "mAcc": 50.2, "per_class_iou": {"sky": 90.1},
     "iterations": 300, "wall_time_s": 41.2, "config_hash": "ab12cd34",
     "git_commit": "abc123", "versions": {"torch": "2.14.1"}}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .common import (
    CELL_KEYS,
    DENOISING_ARMS,
    NOISE_AXES,
    NO_SETTING,
    RUN_KEYS,
    STRING_COLUMNS,
    NoiseSetting,
    arm_rank,
    atomic_write_text,
    choose_default_setting,
    ci_halfwidth,
    fraction_value,
    setting_mask,
    sigma_label,
    sigma_sort_key,
)
from . import claims_table_path, csv_paths
from ddep.sweep import conditioning_label, run_name

METRICS: tuple[str, ...] = ("mIoU", "aAcc", "mAcc")
PROVENANCE: tuple[str, ...] = ("iterations", "wall_time_s", "config_hash", "git_commit")
# (denoising arm, baseline arm) -> label: the paper's two headline comparisons.
COMPARISONS: dict[tuple[str, str], str] = {
    ("ddep", "21k"): "DDeP - 21K",
    ("dep", "none"): "DeP - none",
}
# Seeds are matched on these keys (plus "seed"); preset is included so a tiny smoke-test run is
# never paired with a full-size run.
PAIR_KEYS: list[str] = ["dataset", "label_fraction", "n_labelled", "preset"]
# Confidence level of every interval written (the *_ci95 columns are named after it).
CONFIDENCE = 0.95


class RunFileError(ValueError):
    """A per-run JSON file is unreadable or violates the contract; the message names the file."""


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _label(x: object) -> str:
    """Normalise a label field to a string (a float 0.2 written by mistake becomes "0.2")."""
    return str(x)


def _parse_run(path: Path) -> dict:
    """Read and validate one per-run JSON, returning a flat row dict."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise RunFileError(f"{path}: not valid JSON ({exc})") from exc
    except OSError as exc:
        raise RunFileError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(data, dict):
        raise RunFileError(f"{path}: expected a JSON object, got {type(data).__name__}")

    # noise_conditioning may be absent (runs written before it was an axis): off.
    missing = [k for k in (*RUN_KEYS, *METRICS) if k not in data and k != "noise_conditioning"]
    if missing:
        raise RunFileError(f"{path}: missing required field(s) {missing}")

    row: dict = {}
    for k in ("dataset", "label_fraction", "arm", "sigma", "formulation", "target", "preset"):
        v = data[k]
        if v is None or isinstance(v, (dict, list, bool)) or str(v).strip() == "":
            raise RunFileError(f"{path}: field {k!r} must be a non-empty string, got {v!r}")
        row[k] = _label(v).strip()
    # Arms are compared case-insensitively ("21K" and "21k" are the same arm).
    row["arm"] = row["arm"].lower()
    row["sigma"] = sigma_label(row["sigma"])
    row["noise_conditioning"] = (conditioning_label(data.get("noise_conditioning", False))
                                 if row["arm"] in DENOISING_ARMS else NO_SETTING)
    for k in ("n_labelled", "seed"):
        v = data[k]
        if not _is_number(v) or not float(v).is_integer():
            raise RunFileError(f"{path}: field {k!r} must be an integer, got {v!r}")
        row[k] = int(v)
    for k in METRICS:
        v = data[k]
        # mmseg's IoUMetric reports percentages; a value in [0, 1] is legal but > 100 is a bug.
        if not _is_number(v) or (math.isfinite(v) and not 0.0 <= v <= 100.0):
            raise RunFileError(f"{path}: metric {k!r} must be a percentage in [0, 100], got {v!r}")
        row[k] = float(v)

    per_class = data.get("per_class_iou", {}) or {}
    if not isinstance(per_class, dict):
        raise RunFileError(f"{path}: 'per_class_iou' must be an object of class -> IoU")
    for cls, v in per_class.items():
        if v is not None and not _is_number(v):
            raise RunFileError(f"{path}: per_class_iou[{cls!r}] must be a number, got {v!r}")
        row[f"iou_{cls}"] = math.nan if v is None else float(v)

    for k in PROVENANCE:
        row[k] = data.get(k)
    # Other scalar fields (e.g. noise_conditioning, split_file) are kept as provenance columns.
    known = {*RUN_KEYS, *METRICS, *PROVENANCE, "per_class_iou", "versions", "json_path"}
    for k, v in data.items():
        if k not in known and (v is None or isinstance(v, (str, int, float, bool))):
            row[k] = v
    versions = data.get("versions", {}) or {}
    if not isinstance(versions, dict):
        raise RunFileError(f"{path}: 'versions' must be an object of package -> version")
    for pkg, ver in versions.items():
        row[f"version_{pkg}"] = str(ver)
    row["json_path"] = str(path)
    return row


def load_runs(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Load per-run JSON files into a tidy DataFrame, one row per run.

    Columns: identity (RUN_KEYS), metrics (mIoU, aAcc, mAcc), ``iou_<class>`` per-class IoU,
    provenance, ``version_<pkg>``, ``json_path``. Rows are sorted in paper order.
    Raises RunFileError naming the file for a malformed JSON, and ValueError when two files
    describe the same run (same identity and seed), which would silently double-count a seed.
    """
    rows = [_parse_run(Path(p)) for p in sorted({str(p) for p in paths})]
    base = [*RUN_KEYS, *METRICS]
    if not rows:
        return pd.DataFrame(columns=[*base, *PROVENANCE, "json_path"])
    df = pd.DataFrame(rows)

    dup = df[df.duplicated(RUN_KEYS, keep=False)]
    if not dup.empty:
        groups = dup.groupby(RUN_KEYS, sort=False)["json_path"].apply(list).tolist()
        raise ValueError(
            "duplicate runs (same identity and seed) in: "
            + "; ".join(" and ".join(g) for g in groups[:5])
        )

    iou = sorted(c for c in df.columns if c.startswith("iou_"))
    ver = sorted(c for c in df.columns if c.startswith("version_"))
    fixed = {*base, *iou, *ver, *PROVENANCE, "json_path"}
    extra = [c for c in df.columns if c not in fixed]  # in first-seen order
    df = df[[*base, *iou, *PROVENANCE, *extra, *ver, "json_path"]]
    return sort_rows(df).reset_index(drop=True)


# Columns with a paper order; others sort as text.
_ORDER = {"label_fraction": fraction_value, "arm": lambda a: (arm_rank(a), a),
          "sigma": sigma_sort_key, "seed": int}


def sort_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in paper order: dataset, preset, label fraction (numeric), arm, noise setting
    (sigma numeric, fixed before intervals), seed."""
    by = [c for c in ("dataset", "preset", "label_fraction", "arm", *NOISE_AXES, "seed") if c in df]
    # ranks, not the keys themselves: pandas cannot order tuples
    return df.sort_values(by, kind="mergesort", key=lambda col: col.map(
        {v: i for i, v in enumerate(sorted(set(col), key=_ORDER.get(col.name, str)))}))


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV written by this package, keeping label columns as strings ("-", "1/30")."""
    dtypes = {c: str for c in STRING_COLUMNS}
    return pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])


# ---------------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------------


def _mean_std_ci(values: pd.Series, confidence: float) -> tuple[float, float, int, float]:
    """Mean, sample std (ddof=1, over seeds), n and t CI half-width of the non-NaN values."""
    v = values.dropna()
    return v.mean(), v.std(ddof=1), len(v), ci_halfwidth(v.std(ddof=1), len(v), confidence)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell (CELL_KEYS): mean, sample std, n seeds and t-based CI half-width of mIoU, plus
    aAcc and mAcc means and the list of seeds. One row per cell, in paper order.

    Columns: CELL_KEYS + [n, mIoU_mean, mIoU_std, mIoU_ci95, mIoU_ci_low, mIoU_ci_high,
    aAcc_mean, mAcc_mean, seeds]. ``mIoU_ci95`` is NaN for a single seed.
    """
    cols = [*CELL_KEYS, "n", "mIoU_mean", "mIoU_std", "mIoU_ci95", "mIoU_ci_low",
            "mIoU_ci_high", "aAcc_mean", "mAcc_mean", "seeds"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    out = runs.groupby(CELL_KEYS, sort=False, dropna=False).agg(
        n=("mIoU", "count"), mIoU_mean=("mIoU", "mean"), mIoU_std=("mIoU", "std"),
        aAcc_mean=("aAcc", "mean"), mAcc_mean=("mAcc", "mean"),
        seeds=("seed", lambda s: ";".join(map(str, sorted(s.astype(int)))))).reset_index()
    out["mIoU_ci95"] = [ci_halfwidth(sd, n, CONFIDENCE) for sd, n in zip(out["mIoU_std"], out["n"])]
    out["mIoU_ci_low"] = out["mIoU_mean"] - out["mIoU_ci95"]
    out["mIoU_ci_high"] = out["mIoU_mean"] + out["mIoU_ci95"]
    return sort_rows(out[cols]).reset_index(drop=True)


def paired_differences(runs: pd.DataFrame, default: NoiseSetting | None = None) -> pd.DataFrame:
    """The paper's comparisons, and the noise ablations, as paired differences over seeds.

    DDeP - 21K and DeP - none, for every noise setting of the denoising arm; and every other
    setting of DeP/DDeP minus the same arm at the ``default`` setting (comparison
    ``ddep_s0.4_scaled - ddep_s0.2``). Seeds are matched on (dataset, label_fraction,
    n_labelled, preset, seed); each difference is summarised by its mean, sample std, n
    pairs, t CI half-width and bounds, and the number of seeds where it is > 0. Settings with
    no matching baseline seed are omitted.
    """
    cols = [*PAIR_KEYS, "comparison", "arm", "baseline", *NOISE_AXES, "n_pairs", "mean_diff",
            "std_diff", "ci95", "ci_low", "ci_high", "n_positive", "seeds"]
    pairs = []  # (label, baseline name, treated runs, baseline runs)
    for (arm, base), label in COMPARISONS.items():
        pairs.append((label, base, runs[runs["arm"] == arm], runs[runs["arm"] == base]))
    if default is not None:
        for arm in DENOISING_ARMS:
            base = runs[(runs["arm"] == arm) & setting_mask(runs, default)]
            others = runs[(runs["arm"] == arm) & ~setting_mask(runs, default)]
            for _, treat in others.groupby(list(NOISE_AXES), sort=False):
                name = run_name(arm, NoiseSetting(*treat.iloc[0][list(NOISE_AXES)]))
                pairs.append((f"{name} - {run_name(arm, default)}", run_name(arm, default), treat, base))
    out = []
    for label, base, treat, ctrl in pairs:
        if treat.empty or ctrl.empty:
            continue
        merged = treat.merge(ctrl[[*PAIR_KEYS, "seed", "mIoU"]], on=[*PAIR_KEYS, "seed"],
                             suffixes=("", "_base"))
        setting = [*PAIR_KEYS, "arm", *NOISE_AXES]
        for key, g in merged.groupby(setting, sort=False, dropna=False):
            diff = g["mIoU"] - g["mIoU_base"]
            mean, std, n, ci = _mean_std_ci(diff, CONFIDENCE)
            out.append({**dict(zip(setting, key)), "comparison": label, "baseline": base,
                        "n_pairs": n, "mean_diff": mean, "std_diff": std, "ci95": ci,
                        "ci_low": mean - ci, "ci_high": mean + ci,
                        "n_positive": int((diff > 0).sum()),
                        "seeds": ";".join(str(s) for s in sorted(g["seed"].astype(int)))})
    if not out:
        return pd.DataFrame(columns=cols)
    return sort_rows(pd.DataFrame(out, columns=cols)).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Writing everything
# ---------------------------------------------------------------------------------------------


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    return atomic_write_text(path, df.to_csv(index=False))


def write_results(
    json_paths: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    default_noise: NoiseSetting | None = None,
    quiet: bool = False,
) -> str:
    """Load runs and write ``runs.csv``, ``summary.csv``, ``paired.csv``, ``claims.csv`` and
    ``tables/`` (with ``claims.md``) under `out_dir`, each atomically. Prints (unless `quiet`)
    and returns a short human summary."""
    # Local imports: both modules import this one.
    from .claims import write_claims
    from .tables import write_tables

    out = Path(out_dir)
    runs = load_runs(json_paths)
    summary = summarise(runs)
    # DeP/DDeP's setting in the label-efficiency table and the claims, the ablations' baseline
    default = default_noise or choose_default_setting(summary)
    paired = paired_differences(runs, default)
    for table, path in zip((runs, summary, paired), csv_paths(str(out))):
        _write_csv(table, Path(path))

    lines = [
        (f"aggregated {len(runs)} run(s) into {len(summary)} cell(s) "
         f"over {runs['dataset'].nunique() if len(runs) else 0} dataset(s) -> {out}"),
        f"paired comparisons: {len(paired)} setting(s)",
    ]
    table_files, notes = write_tables(summary, paired, out, default)
    claims = write_claims(runs, out, default)
    table_files.append(Path(claims_table_path(str(out))))
    lines.append(f"tables: {len(table_files)} file(s) in {out / 'tables'}")
    verdicts = claims["verdict"].value_counts()
    lines.append(f"claims: {len(claims)} row(s)"
                 + "".join(f", {n} {v}" for v, n in verdicts.items()))
    lines += [f"  note: {n}" for n in notes]
    text = "\n".join(lines)
    if not quiet:
        print(text)
    return text
