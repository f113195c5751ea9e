"""`ddep compare A B`: two results folders side by side, on the committed results and on perturbed copies of them."""
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ddep.analysis.aggregate import read_csv
from ddep.analysis.compare import compare_cells, welch_p

REPO = Path(__file__).resolve().parents[1]


def compare(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ddep.cli", "compare", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO)


def copy_results(dest: Path) -> Path:
    dest.mkdir()
    for name in ("summary.csv", "claims.csv"):
        shutil.copy(REPO / "results" / name, dest / name)
    return dest


def test_the_committed_results_against_themselves_are_identical(tmp_path):
    proc = compare("results", copy_results(tmp_path / "same"), "--out", tmp_path / "cmp", "--fail-on-robust-flip")
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    cells, claims = (read_csv(tmp_path / "cmp" / f"compare_{k}.csv") for k in ("cells", "claims"))
    summary = read_csv(REPO / "results/summary.csv")
    assert len(cells) == len(summary) and (cells["present"] == "both").all()
    assert (cells["diff"] == 0).all() and cells["a_in_b_ci"].all() and cells["b_in_a_ci"].all()
    assert (cells["welch_p"] == 1.0).all() and not cells["welch_rejects"].any()
    assert len(claims) == len(read_csv(REPO / "results/claims.csv")) and not claims["differs"].any()
    assert "bit-identical means and stds: yes" in proc.stdout
    assert f"B's means inside A's 95% CIs: {len(summary)} of {len(summary)}" in proc.stdout


def test_a_moved_cell_and_a_robust_flip_are_reported_and_fail_only_when_asked(tmp_path):
    b = copy_results(tmp_path / "rerun")
    summary, claims = read_csv(b / "summary.csv"), read_csv(b / "claims.csv")
    # cell 0 moves by 5 standard deviations (Welch rejects), cell 1 by a tenth of its CI (inside), the last is gone
    for row, shift in ((0, 5 * summary.loc[0, "mIoU_std"]), (1, 0.1 * summary.loc[1, "mIoU_ci95"])):
        for c in ("mIoU_mean", "mIoU_ci_low", "mIoU_ci_high"):
            summary.loc[row, c] += shift
    summary.iloc[:-1].to_csv(b / "summary.csv", index=False)
    # a robust verdict flips: the first robust "contradicted" becomes a robust "holds"; a fragile one flips too
    robust = claims.index[(claims["verdict"] == "contradicted") & ~claims["fragile"]][0]
    fragile = claims.index[claims["fragile"]][0]
    low, high = claims.loc[robust, ["ci_low", "ci_high"]]
    claims.loc[robust, ["mean_diff", "ci_low", "ci_high", "verdict"]] = [(-low - high) / 2, -high, -low, "holds"]
    claims.loc[fragile, "verdict"] = "not shown" if claims.loc[fragile, "verdict"] == "holds" else "holds"
    claims.to_csv(b / "claims.csv", index=False)

    proc = compare("results", b, "--out", tmp_path / "cmp")
    assert proc.returncode == 0, proc.stderr  # reported, not failed, unless asked
    print(proc.stdout)
    cells = read_csv(tmp_path / "cmp/compare_cells.csv")
    assert cells["present"].tolist() == ["both"] * (len(summary) - 1) + ["a only"]
    assert cells.loc[0, "welch_rejects"] and not cells.loc[0, "b_in_a_ci"]
    assert cells.loc[1, "b_in_a_ci"] and cells.loc[1, "a_in_b_ci"] and not cells.loc[1, "welch_rejects"]
    assert cells.loc[1, "diff"] == pytest.approx(0.1 * summary.loc[1, "mIoU_ci95"])
    assert cells["welch_rejects"].sum() == 1
    flips = read_csv(tmp_path / "cmp/compare_claims.csv")
    assert flips["robust_flip"].tolist() == [i == robust for i in range(len(claims))]
    assert flips["differs"].tolist() == [i in (robust, fragile) for i in range(len(claims))]
    assert "ROBUST FLIP" in proc.stdout and "flips (fragile)" in proc.stdout
    assert "(1 robust flip(s), fragile in neither run)" in proc.stdout
    assert compare("results", b, "--out", tmp_path / "cmp", "--fail-on-robust-flip").returncode == 1


def test_a_folder_without_results_is_one_line():
    proc = compare("results", "no/such/folder")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "ddep compare: error: no/such/folder/summary.csv does not exist: no/such/folder is not a results folder "
        "(one that `ddep aggregate --out no/such/folder` or the workflow's results_dir wrote)"]


def test_welch_p_matches_scipy_and_handles_no_spread():
    from scipy import stats
    a, b = pd.Series([28.0, 29.5, 30.0, 31.0, 32.5]), pd.Series([32.5, 33.0, 33.2, 34.0, 33.5, 31.9])
    assert welch_p(a.mean(), a.std(), len(a), b.mean(), b.std(), len(b)) == pytest.approx(
        stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert welch_p(30, 0, 5, 30, 0, 5) == 1.0 and welch_p(30, 0, 5, 31, 0, 5) == 0.0
    assert pd.isna(welch_p(30, float("nan"), 1, 30, 1, 5))
    empty = compare_cells(read_csv(REPO / "results/summary.csv").iloc[:0], read_csv(REPO / "results/summary.csv"))
    assert (empty["present"] == "b only").all() and not empty["welch_rejects"].any()
