"""The paper's claims, tested on the runs: one row per claim x dataset (x preset) x fraction.

Every claim is a paired mIoU difference over seeds (seeds matched on PAIR_KEYS + seed, as in
paired.csv) with a 95% t interval, and a verdict:

* ``holds``         the CI lies above 0;
* ``not shown``     the CI contains 0 (or touches it);
* ``contradicted``  the CI lies below 0;
* ``not shown (n < 2)``  fewer than two pairs, so there is no interval.

DeP and DDeP are taken at the default noise setting (the label-efficiency grid's), and the
sigma claim compares the default sigma with the intervals run at the default's other axes. A
claim whose comparison has no paired runs gets no row. The definitions (claim wording,
small/large fraction, "best of the four") live here and nowhere else; the Markdown caption
and the README describe them. The interval is the t interval of paired.csv.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import CSV_NAMES, claims_table_path, csv_paths
from .aggregate import CONFIDENCE, PAIR_KEYS, _mean_std_ci
from .common import (
    ARM_ORDER,
    DENOISING_ARMS,
    NoiseSetting,
    arm_display,
    at_default,
    atomic_write_text,
    describe_setting,
    fraction_column_label,
    parse_sigma,
)

HOLDS, NOT_SHOWN, CONTRADICTED = "holds", "not shown", "contradicted"
TOO_FEW = "not shown (n < 2)"

# A seed of one cell: the denoising variant is part of it so that DeP and DDeP of different
# formulations are never mixed.
VARIANT_KEYS: list[str] = [*PAIR_KEYS, "formulation", "target"]
CLAIM_COLUMNS: list[str] = [
    "claim_id", "claim", "dataset", "preset", "label_fraction", "n_labelled", "comparison",
    "sigma", "formulation", "target", "n_pairs", "mean_diff", "ci_low", "ci_high", "verdict",
    "seeds",
]
# Which fractions of a dataset a claim is about. "small" is the smallest number of labelled
# images of that dataset and preset in the runs, "large" the largest; a dataset run at a
# single fraction has neither (one fraction is not small or large relative to anything).
ALL, SMALL, LARGE = "all", "small", "large"


@dataclass(frozen=True)
class ArmClaim:
    """A claim that one arm beats another (or the best of several) per seed."""

    claim_id: str
    claim: str
    arm: str
    baselines: tuple[str, ...]  # several: the per-seed best of them is the baseline
    fractions: str = ALL


ARM_CLAIMS: tuple[ArmClaim, ...] = (
    ArmClaim("dep_gt_none", "DeP > random init", "dep", ("none",)),
    ArmClaim("dep_gt_21k_small", "DeP > 21K at small fractions", "dep", ("21k",), SMALL),
    ArmClaim("21k_gt_dep_large", "21K > DeP at large fractions", "21k", ("dep",), LARGE),
    ArmClaim("ddep_gt_21k", "DDeP > 21K", "ddep", ("21k",)),
    # "Best of the four": DDeP minus the best other arm of the same seed, so a seed counts
    # only where all four arms ran.
    ArmClaim("ddep_best", "DDeP best of the four", "ddep", ("none", "21k", "dep")),
)
SIGMA_CLAIM_ID = "fixed_sigma_gt_interval"
SIGMA_CLAIM = "fixed sigma beats sigma drawn from an interval"


def verdict(n_pairs: int, ci_low: float, ci_high: float) -> str:
    """The verdict of a paired difference from its CI (see the module docstring)."""
    if n_pairs < 2 or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return TOO_FEW
    if ci_low > 0:
        return HOLDS
    if ci_high < 0:
        return CONTRADICTED
    return NOT_SHOWN


def _rows(diff: pd.Series, keys: pd.DataFrame, fixed: dict) -> list[dict]:
    """One row per group of `keys` (VARIANT_KEYS columns) from per-seed differences `diff`."""
    data = keys.assign(diff=diff).dropna(subset=["diff"])
    out = []
    for key, g in data.groupby(VARIANT_KEYS, sort=False, dropna=False):
        mean, _, n, half = _mean_std_ci(g["diff"], CONFIDENCE)
        low, high = mean - half, mean + half
        out.append({**fixed, **dict(zip(VARIANT_KEYS, key)), "n_pairs": n, "mean_diff": mean,
                    "ci_low": low, "ci_high": high, "verdict": verdict(n, low, high),
                    "seeds": ";".join(str(s) for s in sorted(g["seed"].astype(int)))})
    return out


def _fraction_masks(runs: pd.DataFrame) -> dict[str, Callable[[pd.DataFrame], pd.Series]]:
    """Row masks of a per-seed table for the fractions a claim is about (ALL, SMALL, LARGE)."""
    sizes = runs.groupby(["dataset", "preset"])["n_labelled"].agg(["min", "max", "nunique"])
    sizes = sizes[sizes["nunique"] > 1]

    def at(which: str) -> Callable[[pd.DataFrame], pd.Series]:
        cells = {(ds, preset, n) for (ds, preset), n in sizes[which].items()}
        return lambda df: pd.Series(list(zip(df["dataset"], df["preset"], df["n_labelled"])),
                                    index=df.index).isin(cells)

    return {ALL: lambda df: pd.Series(True, index=df.index), SMALL: at("min"), LARGE: at("max")}


def _arm_claims(runs: pd.DataFrame, sigma: str) -> list[dict]:
    """Rows of the arm claims: one per claim x cell x denoising variant."""
    # Per seed, one column per arm: DeP/DDeP at the default sigma (per variant), beside the
    # baselines of the same seed.
    den = runs[runs["arm"].isin(DENOISING_ARMS) & (runs["sigma"] == sigma)]
    base = runs[~runs["arm"].isin(DENOISING_ARMS)]
    if den.empty:
        return []
    wide = den.pivot_table(index=[*VARIANT_KEYS, "seed"], columns="arm", values="mIoU")
    wide = wide.reset_index()
    if not base.empty:
        baselines = base.pivot_table(index=[*PAIR_KEYS, "seed"], columns="arm", values="mIoU")
        wide = wide.merge(baselines.reset_index(), on=[*PAIR_KEYS, "seed"], how="left")
    wide = wide.reindex(columns=[*VARIANT_KEYS, "seed", *ARM_ORDER])  # absent arms: NaN
    masks = _fraction_masks(runs)
    out = []
    for c in ARM_CLAIMS:
        # skipna=False: a seed missing one of the baselines has no "best other arm".
        best_baseline = wide[list(c.baselines)].max(axis=1, skipna=False)
        diff = (wide[c.arm] - best_baseline).where(masks[c.fractions](wide))
        names = ", ".join(arm_display(b) for b in c.baselines)
        baseline = names if len(c.baselines) == 1 else f"best of ({names})"
        out += _rows(diff, wide, {"claim_id": c.claim_id, "claim": c.claim, "sigma": sigma,
                                  "comparison": f"{arm_display(c.arm)} - {baseline}"})
    return out


def _sigma_claims(runs: pd.DataFrame, sigma: str) -> list[dict]:
    """Rows of the sigma claim: the default fixed sigma minus each interval setting, per
    denoising arm, where both were run."""
    if parse_sigma(sigma)[0] != "fixed":
        return []  # the claim is about a fixed sigma; an interval default has nothing to beat
    out = []
    for arm in DENOISING_ARMS:
        sub = runs[runs["arm"] == arm]
        intervals = sorted({s for s in sub["sigma"] if parse_sigma(s)[0] == "interval"},
                           key=lambda s: parse_sigma(s)[1])
        if sub.empty or not intervals or not (sub["sigma"] == sigma).any():
            continue
        wide = sub.pivot_table(index=[*VARIANT_KEYS, "seed"], columns="sigma",
                               values="mIoU").reset_index()
        for interval in intervals:
            out += _rows(wide[sigma] - wide[interval], wide, {
                "claim_id": SIGMA_CLAIM_ID, "claim": SIGMA_CLAIM,
                "sigma": f"{sigma} vs {interval}",
                "comparison": f"{arm_display(arm)}: sigma {sigma} - {interval}"})
    return out


def claims_table(runs: pd.DataFrame, default: NoiseSetting | None) -> pd.DataFrame:
    """The claims table (CLAIM_COLUMNS) of a runs table (as in runs.csv), with DeP/DDeP at the
    `default` setting (None: no DeP/DDeP results, so no rows). Rows: per dataset and preset,
    claims in paper order, then fractions."""
    if runs.empty or default is None:
        return pd.DataFrame(columns=CLAIM_COLUMNS)
    # The sigma claim: the default's formulation, target and conditioning, any sigma.
    same_axes = ~runs["arm"].isin(DENOISING_ARMS) | (
        (runs["formulation"] == default.formulation) & (runs["target"] == default.target)
        & (runs["noise_conditioning"] == default.noise_conditioning))
    rows = _arm_claims(at_default(runs, default), default.sigma) + \
        _sigma_claims(runs[same_axes], default.sigma)
    if not rows:
        return pd.DataFrame(columns=CLAIM_COLUMNS)
    df = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    order = [c.claim_id for c in ARM_CLAIMS] + [SIGMA_CLAIM_ID]
    df["_claim"] = df["claim_id"].map(order.index)
    df = df.sort_values(["dataset", "preset", "_claim", "n_labelled", "sigma", "formulation",
                         "target"], kind="mergesort")
    return df.drop(columns="_claim").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def _number(x: float) -> str:
    return f"{x:+.2f}" if math.isfinite(x) else "–"


def claims_caption(default: NoiseSetting | None) -> str:
    """What the table shows and how the verdict is reached (the definitions of this module)."""
    setting = describe_setting(default)
    return (
        f"Paired mIoU differences (percentage points) over seeds matched within dataset x "
        f"fraction x preset; {setting}. Verdict: *holds* when the 95% "
        f"t CI of the mean difference is above 0, *contradicted* when below 0, *not shown* when "
        f"it contains 0, and *not shown (n < 2)* with fewer than two pairs (no interval). "
        f"Small / large fraction: the fewest / most labelled images of the dataset in the runs "
        f"(a dataset run at one fraction has neither). DDeP best of the four: DDeP minus the "
        f"best of the other three arms of the same seed (seeds where all four ran). Fixed "
        f"sigma vs interval: the default fixed sigma minus each interval setting of the same "
        f"arm. Claims without paired runs have no row."
    )


def render_claims_markdown(claims: pd.DataFrame, default: NoiseSetting | None) -> str:
    """The claims table as Markdown: one table per dataset (and preset), then the caption."""
    lines: list[str] = []
    if claims.empty:
        lines += ["**Claims of the paper**", "", "No claim has paired runs.", ""]
    several_presets = claims.groupby("dataset")["preset"].nunique().gt(1)
    for (ds, preset), g in claims.groupby(["dataset", "preset"], sort=False):
        where = f"{ds}, preset {preset}" if several_presets[ds] else ds
        lines += [f"**{where}: claims of the paper**", "",
                  "| claim | fraction (images) | comparison | n | mean diff | 95% CI | verdict |",
                  "|:---|:---:|:---|:---:|:---:|:---:|:---|"]
        for r in g.itertuples():
            ci = (f"[{_number(r.ci_low)}, {_number(r.ci_high)}]"
                  if math.isfinite(r.ci_low) else "–")
            fraction = fraction_column_label(r.label_fraction, r.n_labelled)
            lines.append(f"| {r.claim} | {fraction} | {r.comparison} "
                         f"| {r.n_pairs} | {_number(r.mean_diff)} | {ci} | {r.verdict} |")
        lines.append("")
    lines += [claims_caption(default), ""]
    return "\n".join(lines)


def write_claims(runs: pd.DataFrame, out_dir: str | os.PathLike,
                 default: NoiseSetting | None) -> pd.DataFrame:
    """Write ``claims.csv`` and ``tables/claims.md`` under `out_dir` (atomically) and return
    the claims table."""
    out = Path(out_dir)
    claims = claims_table(runs, default)
    atomic_write_text(csv_paths(str(out))[CSV_NAMES.index("claims")], claims.to_csv(index=False))
    atomic_write_text(claims_table_path(str(out)), render_claims_markdown(claims, default))
    return claims
