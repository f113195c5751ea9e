"""``ddep compare A B``: two results folders side by side, e.g. a rerun (B) against the committed run (A).

Per cell of ``summary.csv``: both mIoU means, B - A, whether each mean lies inside the other's 95% CI, and Welch's
t-test of equal means (with a Bonferroni-corrected rejection flag). Per claim of ``claims.csv``: both verdicts, which
differ, and whether a flip is robust (fragile in neither run, :func:`.claims.compare_claims`). A rerun on another CPU
redraws the training noise, so means move and fragile verdicts may flip; a rejection or a robust flip may not."""

import math
import os
from pathlib import Path

import pandas as pd
from scipy import stats

from . import COMPARE_CSV_NAMES, WELCH_ALPHA, csv_path
from .aggregate import read_csv
from .claims import compare_claims, verdict_text
from .common import CELL_KEYS, atomic_write_text

SIDES: tuple[str, str] = ("a", "b")
CELL_NUMBERS: list[str] = ["n", "mIoU_mean", "mIoU_std", "mIoU_ci_low", "mIoU_ci_high"]


def welch_p(mean_a: float, std_a: float, n_a: float, mean_b: float, std_b: float, n_b: float) -> float:
    """Welch's two-sided p for equal means from the two cells' statistics; NaN with fewer than two seeds a side.
    No spread on either side (bit-identical reruns): 1 for equal means, 0 otherwise."""
    if not (n_a >= 2 and n_b >= 2 and math.isfinite(std_a) and math.isfinite(std_b)):
        return math.nan
    if std_a == 0 and std_b == 0:
        return 1.0 if mean_a == mean_b else 0.0
    return float(stats.ttest_ind_from_stats(mean_a, std_a, n_a, mean_b, std_b, n_b, equal_var=False).pvalue)


def _inside(mean: pd.Series, low: pd.Series, high: pd.Series) -> pd.Series:
    return (mean >= low) & (mean <= high)  # NaN (no CI, or the cell absent) compares False


def compare_cells(a: pd.DataFrame, b: pd.DataFrame, alpha: float = WELCH_ALPHA) -> pd.DataFrame:
    """Two summary tables side by side, a row per cell in either (``present``: both, a only, b only)."""
    keyed = [t[[*CELL_KEYS, *CELL_NUMBERS]].astype(dict.fromkeys(CELL_KEYS, str)).assign(_order=range(len(t)))
             for t in (a, b)]
    both = pd.merge(*keyed, on=CELL_KEYS, how="outer", suffixes=[f"_{s}" for s in SIDES], validate="one_to_one",
                    indicator="present")
    both = both.sort_values([f"_order_{s}" for s in SIDES], kind="mergesort").reset_index(drop=True)  # A's order
    both["present"] = both["present"].map({"both": "both", "left_only": "a only", "right_only": "b only"})
    both["diff"] = both["mIoU_mean_b"] - both["mIoU_mean_a"]
    both["a_in_b_ci"] = _inside(both["mIoU_mean_a"], both["mIoU_ci_low_b"], both["mIoU_ci_high_b"])
    both["b_in_a_ci"] = _inside(both["mIoU_mean_b"], both["mIoU_ci_low_a"], both["mIoU_ci_high_a"])
    both["welch_p"] = [welch_p(*(getattr(r, f"{c}_{s}") for s in SIDES for c in ("mIoU_mean", "mIoU_std", "n")))
                       for r in both.itertuples()]
    tested = int(both["welch_p"].notna().sum())
    both["welch_rejects"] = both["welch_p"] < alpha / max(tested, 1)
    return both[[*CELL_KEYS, "present", *(f"{c}_{s}" for s in SIDES for c in CELL_NUMBERS), "diff", "a_in_b_ci",
                 "b_in_a_ci", "welch_p", "welch_rejects"]]


def _flip_text(differs: bool, robust: bool) -> str:
    return "ROBUST FLIP" if robust else "flips (fragile)" if differs else "same"


def _read(folder: Path, name: str) -> pd.DataFrame:
    path = Path(csv_path(folder, name))
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {folder} is not a results folder (one that `ddep aggregate "
                                f"--out {folder}` or the workflow's results_dir wrote)")
    return read_csv(path)


def _ci(mean: float, low: float, high: float) -> str:
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]" if math.isfinite(low) else f"{mean:.2f}"


def render(cells: pd.DataFrame, claims: pd.DataFrame, names: tuple[str, str], alpha: float = WELCH_ALPHA) -> str:
    """The comparison as text: a cell table, a claim table, and a summary."""
    pd.set_option("display.width", 250)
    shared_row = cells["present"] == "both"
    setting = cells[["sigma", "formulation", "target", "noise_conditioning"]].agg(" ".join, axis=1).str.replace(
        "- - - -", "", regex=False)
    cell_rows = pd.DataFrame({
        "dataset": cells["dataset"], "model": cells["model"], "fraction": cells["label_fraction"],
        "arm": cells["arm"], "noise": setting,
        **{f"{side.upper()} mean [95% CI]": [_ci(*v) for v in zip(*(cells[f"{c}_{side}"] for c in (
            "mIoU_mean", "mIoU_ci_low", "mIoU_ci_high")))] for side in SIDES},
        "B - A": cells["diff"].map(lambda x: f"{x:+.2f}" if math.isfinite(x) else "–"),
        "A in B's CI": cells["a_in_b_ci"].map({True: "yes", False: "no"}).where(shared_row, "–"),
        "B in A's CI": cells["b_in_a_ci"].map({True: "yes", False: "no"}).where(shared_row, "–"),
        "Welch p": cells["welch_p"].map(lambda p: f"{p:.3f}" if math.isfinite(p) else "–")
        + cells["welch_rejects"].map({True: " REJECTS", False: ""})})
    claim_rows = pd.DataFrame({
        "dataset": claims["dataset"], "claim": claims["claim"], "fraction": claims["label_fraction"],
        **{f"{side.upper()} verdict": [verdict_text(v, f) for v, f in zip(claims[f"verdict_{side}"],
                                                                          claims[f"fragile_{side}"])]
           for side in SIDES},
        **{f"{side.upper()} mean [95% CI]": [_ci(*v) for v in zip(*(claims[f"{c}_{side}"] for c in (
            "mean_diff", "ci_low", "ci_high")))] for side in SIDES},
        "verdicts": [_flip_text(d, r) for d, r in zip(claims["differs"], claims["robust_flip"])]})
    shared = cells[cells["present"] == "both"]
    identical = len(shared) > 0 and all((shared[f"{c}_a"] == shared[f"{c}_b"]).all() for c in ("mIoU_mean", "mIoU_std"))
    tested = int(cells["welch_p"].notna().sum())
    only = {k: int((cells["present"] == k).sum()) for k in ("a only", "b only")}
    lines = [f"A = {names[0]}, B = {names[1]}", "", "cells (mIoU, %):",
             cell_rows.to_string(index=False) if len(cell_rows) else "  none", "",
             "claims:", claim_rows.to_string(index=False) if len(claim_rows) else "  none", "",
             f"cells in both: {len(shared)} (only in A: {only['a only']}, only in B: {only['b only']}); "
             f"bit-identical means and stds: {'yes' if identical else 'no'}",
             f"B's means inside A's 95% CIs: {int(shared['b_in_a_ci'].sum())} of {len(shared)}; A's inside B's: "
             f"{int(shared['a_in_b_ci'].sum())} of {len(shared)}",
             f"Welch's t-test rejects equal means (alpha {alpha:g}, Bonferroni over {tested} cell(s): "
             f"p < {alpha / max(tested, 1):.2g}): {int(cells['welch_rejects'].sum())} cell(s)",
             f"claims whose verdict differs: {int(claims['differs'].sum())} of {len(claims)} "
             f"({int(claims['robust_flip'].sum())} robust flip(s), fragile in neither run)"]
    return "\n".join(lines) + "\n"


def compare_results(folder_a: str | os.PathLike, folder_b: str | os.PathLike, out: str | os.PathLike | None = None,
                    alpha: float = WELCH_ALPHA) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Compare two results folders: (cells, claims, text); with `out`, also write its two CSVs there."""
    a, b = Path(folder_a), Path(folder_b)
    cells = compare_cells(_read(a, "summary"), _read(b, "summary"), alpha)
    claims = compare_claims(_read(a, "claims"), _read(b, "claims"), sides=SIDES)
    if out is not None:
        for name, table in zip(COMPARE_CSV_NAMES, (cells, claims)):
            atomic_write_text(csv_path(out, name), table.to_csv(index=False))
    return cells, claims, render(cells, claims, (str(a), str(b)), alpha)
