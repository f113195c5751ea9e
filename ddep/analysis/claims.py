"""The paper's claims, tested on the runs: one row per claim x dataset (x model) x fraction, a paired mIoU
difference over seeds, its verdict and whether a rerun on another CPU may flip it (CLAIMS_CAPTION says how; one
such verdict has flipped between AMD EPYC and Intel Xeon). ``compare_claims`` tells a flip from a robust one."""

import math

import pandas as pd

from .common import (ARM_ORDER, CONFIDENCE, PAIR_KEYS, PRESET_ARMS, denoised, NoiseSetting, arm_display, at_default,
                     describe_setting, diff_stats, fraction_column_label, minimal_detectable_effect, parse_sigma)

HOLDS, NOT_SHOWN, CONTRADICTED, TOO_FEW = "holds", "not shown", "contradicted", "not shown (n < 2)"
# A seed of one cell: the variant is part of it so DeP/DDeP of different formulations never mix.
VARIANT_KEYS: list[str] = [*PAIR_KEYS, "formulation", "target"]
# A claim is the same claim in two tables when these agree (the rest are its numbers).
CLAIM_KEYS: list[str] = ["claim_id", "dataset", "model", "label_fraction", "n_labelled", "comparison", "sigma",
                         "formulation", "target"]
CLAIM_COLUMNS: list[str] = [*CLAIM_KEYS[:1], "claim", *CLAIM_KEYS[1:], "n_pairs", "mean_diff", "ci_low", "ci_high",
                            "mde", "verdict", "seeds", "fragile"]
FRAGILE_MARGIN = 0.5
MDE_POWER = 0.8  # of the minimal detectable effect (``mde``): what "not shown" could have shown
# The fractions a claim is about: "small"/"large" = fewest/most labelled images of the dataset and model in the
# runs (a dataset run at a single fraction has neither).
ALL, SMALL, LARGE = "all", "small", "large"
# (claim_id, claim, arm, baselines, fractions); several baselines: the per-seed best of them, so "best of the four"
# counts only seeds where all four arms ran.
ARM_CLAIMS: tuple[tuple[str, str, str, tuple[str, ...], str], ...] = (
    ("dep_gt_none", "DeP > random init", "dep", ("none",), ALL),
    ("dep_gt_21k_small", "DeP > 21K at small fractions", "dep", ("21k",), SMALL),
    ("21k_gt_dep_large", "21K > DeP at large fractions", "21k", ("dep",), LARGE),
    ("ddep_gt_21k", "DDeP > 21K", "ddep", ("21k",), ALL),
    ("ddep_best", "DDeP best of the four", "ddep", ("none", "21k", "dep"), ALL),
)
SIGMA_CLAIM_ID, SIGMA_CLAIM = "fixed_sigma_gt_interval", "fixed sigma beats sigma drawn from an interval"
# What the claims table shows and how a verdict is reached: its caption.
CLAIMS_CAPTION = (
    "Paired mIoU differences (percentage points) over seeds matched within dataset x fraction x model; {setting}. "
    "Verdict: *holds* when the 95% t CI of the mean difference is above 0, *contradicted* when below 0, *not shown* "
    "when it contains 0, and *not shown (n < 2)* with fewer than two pairs (no interval). *(fragile)* after a verdict: "
    "the CI bound nearest 0 lies within half the CI's half-width of 0, about as far as rerunning the same seeds and "
    "splits on another CPU moves the mean (the training noise is redrawn: sqrt(2)·sd/sqrt(n), 0.5x the half-width "
    "t·sd/sqrt(n) at n = 5), so the verdict may flip on such a rerun; *not shown (n < 2)* is never fragile. MDE: the "
    "minimal detectable effect, the true mean difference that this test (two-sided, 95%) would call non-zero with "
    "{power:.0%} power at the observed spread and n (noncentral t); a *not shown* claim rules out effects of about "
    "that size, not smaller ones. Small / large fraction: the fewest / most labelled images of the dataset in the runs "
    "(a dataset run at one fraction has neither). DDeP best of the four: DDeP minus the best of the other three arms "
    "of the same seed (seeds where all four ran). Fixed sigma vs interval: the default fixed sigma minus each interval "
    "setting of the same arm. Claims without paired runs have no row.")


def verdict(n_pairs: int, ci_low: float, ci_high: float) -> str:
    """The verdict of a paired difference from its CI (CLAIMS_CAPTION)."""
    if n_pairs < 2 or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return TOO_FEW
    return HOLDS if ci_low > 0 else CONTRADICTED if ci_high < 0 else NOT_SHOWN


def is_fragile(n_pairs: int, ci_low: float, ci_high: float) -> bool:
    """Whether a verdict could flip on a rerun (CLAIMS_CAPTION); never without a CI."""
    return (verdict(n_pairs, ci_low, ci_high) != TOO_FEW
            and min(abs(ci_low), abs(ci_high)) <= FRAGILE_MARGIN * (ci_high - ci_low) / 2)


def _rows(diff: pd.Series, keys: pd.DataFrame, fixed: dict) -> list[dict]:
    """One row per VARIANT_KEYS group of `keys` from the per-seed differences `diff`."""
    rows = []
    for key, g in keys.assign(diff=diff).dropna(subset=["diff"]).groupby(VARIANT_KEYS, sort=False, dropna=False):
        r = diff_stats(g["diff"], g["seed"])
        ci = r["n_pairs"], r["ci_low"], r["ci_high"]
        rows.append({**fixed, **dict(zip(VARIANT_KEYS, key)), **r, "verdict": verdict(*ci), "fragile": is_fragile(*ci),
                     "mde": minimal_detectable_effect(r["std_diff"], r["n_pairs"], CONFIDENCE, MDE_POWER)})
    return rows


def _arm_claims(runs: pd.DataFrame, sigma: str) -> list[dict]:
    """Rows of the arm claims: one per claim x cell x denoising variant."""
    denoising = denoised(runs)
    den, base = runs[denoising & (runs["sigma"] == sigma)], runs[~denoising]
    if den.empty:
        return []
    # Per seed, one column per arm: DeP/DDeP (per variant) beside the baselines of the same seed (absent arms: NaN).
    wide = den.pivot_table(index=[*VARIANT_KEYS, "seed"], columns="arm", values="mIoU").reset_index()
    if not base.empty:
        wide = wide.merge(base.pivot_table(index=[*PAIR_KEYS, "seed"], columns="arm", values="mIoU").reset_index(),
                          on=[*PAIR_KEYS, "seed"], how="left")
    wide = wide.reindex(columns=[*VARIANT_KEYS, "seed", *ARM_ORDER])
    sizes = wide.join(runs.groupby(["dataset", "model"])["n_labelled"].agg(["min", "max", "nunique"]),
                      on=["dataset", "model"])
    several, n = sizes["nunique"] > 1, wide["n_labelled"]
    masks = {ALL: pd.Series(True, index=wide.index), SMALL: several & (n == sizes["min"]),
             LARGE: several & (n == sizes["max"])}
    out = []
    for claim_id, claim, arm, baselines, fractions in ARM_CLAIMS:
        # skipna=False: a seed missing one of the baselines has no "best other arm".
        diff = (wide[arm] - wide[list(baselines)].max(axis=1, skipna=False)).where(masks[fractions])
        names = ", ".join(map(arm_display, baselines))
        baseline = names if len(baselines) == 1 else f"best of ({names})"
        out += _rows(diff, wide, {"claim_id": claim_id, "claim": claim, "sigma": sigma,
                                  "comparison": f"{arm_display(arm)} - {baseline}"})
    return out


def _sigma_claims(runs: pd.DataFrame, sigma: str) -> list[dict]:
    """Rows of the sigma claim: the default fixed sigma minus each interval setting, per arm."""
    if parse_sigma(sigma)[0] != "fixed":
        return []  # an interval default has no fixed sigma to compare
    out = []
    for arm in (name for name, record in PRESET_ARMS.items() if record.denoised):
        sub = runs[runs["arm"] == arm]
        intervals = sorted({s for s in sub["sigma"] if parse_sigma(s)[0] == "interval"},
                           key=lambda s: parse_sigma(s)[1])
        if not intervals or not (sub["sigma"] == sigma).any():
            continue
        wide = sub.pivot_table(index=[*VARIANT_KEYS, "seed"], columns="sigma", values="mIoU").reset_index()
        out += [row for interval in intervals for row in _rows(wide[sigma] - wide[interval], wide, {
            "claim_id": SIGMA_CLAIM_ID, "claim": SIGMA_CLAIM, "sigma": f"{sigma} vs {interval}",
            "comparison": f"{arm_display(arm)}: sigma {sigma} - {interval}"})]
    return out


def claims_table(runs: pd.DataFrame, default: NoiseSetting | None) -> pd.DataFrame:
    """The claims of a runs table, DeP/DDeP at `default` (None: no rows): per dataset and model, claim, fraction."""
    runs = runs[runs["arm"].isin(ARM_ORDER)]  # the paper's claims are on its arms; the user's: comparisons
    if runs.empty or default is None:
        return pd.DataFrame(columns=CLAIM_COLUMNS)
    # The sigma claim: the default's formulation, target and conditioning, any sigma.
    same_axes = ~denoised(runs) | (
        (runs["formulation"] == default.formulation) & (runs["target"] == default.target)
        & (runs["noise_conditioning"] == default.noise_conditioning))
    rows = _arm_claims(at_default(runs, default), default.sigma) + _sigma_claims(runs[same_axes], default.sigma)
    order = pd.CategoricalDtype([c[0] for c in ARM_CLAIMS] + [SIGMA_CLAIM_ID], ordered=True)
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS).sort_values(
        ["dataset", "model", "claim_id", "n_labelled", "sigma", "formulation", "target"], kind="mergesort",
        key=lambda c: c.astype(order) if c.name == "claim_id" else c).reset_index(drop=True)


# Each arm of the user's (not a preset) against these presets, paired over seeds as the claims are.
COMPARISON_BASELINES: tuple[str, ...] = ("ddep", "21k", "none")
COMPARISONS_CAPTION = (
    "Each arm of the config's own against DDeP, 21K and random init: paired mIoU differences (percentage points) over "
    "seeds matched within dataset x fraction x model; {setting}. A row reads as the claim that the arm beats the "
    "baseline; its verdict, *(fragile)* and MDE are the claims table's (claims.md beside this table says how they are "
    "reached). These arms are never part of the paper's claims.")


def comparisons_table(runs: pd.DataFrame, default: NoiseSetting | None) -> pd.DataFrame:
    """Each arm of the user's (any arm not a preset) against COMPARISON_BASELINES, in the claims table's columns:
    per dataset and model, arm, baseline, fraction; denoised arms at `default` (None: no rows)."""
    runs = at_default(runs, default) if default is not None else runs[~denoised(runs)]
    own = [a for a in dict.fromkeys(runs["arm"]) if a not in ARM_ORDER]
    if runs.empty or not own:
        return pd.DataFrame(columns=CLAIM_COLUMNS)
    wide = runs.pivot_table(index=[*PAIR_KEYS, "seed"], columns="arm", values="mIoU").reset_index()
    wide = wide.reindex(columns=[*PAIR_KEYS, "seed", *dict.fromkeys([*own, *COMPARISON_BASELINES])])
    out = []
    for arm in own:
        setting = runs.loc[runs["arm"] == arm, ["sigma", "formulation", "target"]].iloc[0]
        keys = wide.assign(formulation=setting["formulation"], target=setting["target"])
        for base in COMPARISON_BASELINES:
            out += _rows(wide[arm] - wide[base], keys, {
                "claim_id": f"{arm}_gt_{base}", "claim": f"{arm} > {arm_display(base)}",
                "comparison": f"{arm} - {arm_display(base)}", "sigma": setting["sigma"]})
    return pd.DataFrame(out, columns=CLAIM_COLUMNS)


def verdict_text(verdict: str, fragile: bool) -> str:
    """The verdict as tables and figures show it: "not shown (fragile)"."""
    return f"{verdict} (fragile)" if fragile else verdict


def _number(x: float, sign: str = "+") -> str:
    return f"{x:{sign}.2f}" if math.isfinite(x) else "–"


def render_claims_markdown(claims: pd.DataFrame, default: NoiseSetting | None, what: str = "claims of the paper",
                           caption: str = CLAIMS_CAPTION, marks: dict[tuple[str, str], str] | None = None) -> str:
    """The claims (or the comparisons: `what`, `caption`) as Markdown: one table per dataset (and model), each
    followed by its mark, if any (:func:`.aggregate.unlearnt_starts`), then the caption."""
    lines = [] if len(claims) else [f"**{what.capitalize()}**", "", "No claim has paired runs.", ""]
    several_models = claims.groupby("dataset")["model"].nunique().gt(1)
    for (ds, model), g in claims.groupby(["dataset", "model"], sort=False):
        lines += [f"**{f'{ds}, model {model}' if several_models[ds] else ds}: {what}**", "",
                  "| claim | fraction (images) | comparison | n | mean diff | 95% CI | MDE | verdict |",
                  "|:---|:---:|:---|:---:|:---:|:---:|:---:|:---|"]
        lines += [f"| {r.claim} | {fraction_column_label(r.label_fraction, r.n_labelled)} | {r.comparison} | "
                  f"{r.n_pairs} | {_number(r.mean_diff)} | "
                  + (f"[{_number(r.ci_low)}, {_number(r.ci_high)}]" if math.isfinite(r.ci_low) else "–")
                  + f" | {_number(r.mde, '')} | {verdict_text(r.verdict, r.fragile)} |" for r in g.itertuples()] + [""]
        if (mark := (marks or {}).get((ds, model))):
            lines += [f"> **Marked:** {mark}", ""]
    return "\n".join([*lines, caption.format(setting=describe_setting(default), power=MDE_POWER), ""])


def compare_claims(committed: pd.DataFrame, fresh: pd.DataFrame,
                   sides: tuple[str, str] = ("committed", "fresh")) -> pd.DataFrame:
    """Two claims tables side by side, a row per claim in either: the numbers suffixed ``_committed`` / ``_fresh``
    (or ``sides``; a missing claim: "absent", not fragile), ``differs``, ``robust_flip`` (differs, neither side
    fragile)."""
    numbers = ["n_pairs", "mean_diff", "ci_low", "ci_high", "verdict", "fragile"]
    tables = dict(zip(sides, (committed, fresh)))
    missing = {side: sorted({*CLAIM_KEYS, "claim", *numbers} - set(t.columns)) for side, t in tables.items()}
    if any(missing.values()):
        raise ValueError("claims tables without the columns compared (written by an older ddep? rerun `ddep "
                         "aggregate`): " + "; ".join(f"{k}: {v}" for k, v in missing.items() if v))
    # Labels as text on both sides ("10" and 10 are the same fraction once read back); a claim appears once per
    # table (validate: a MergeError, a ValueError, otherwise).
    both = pd.merge(*(t[[*CLAIM_KEYS, "claim", *numbers]].astype(dict.fromkeys(CLAIM_KEYS, str))
                      .assign(_order=range(len(t))) for t in tables.values()), on=CLAIM_KEYS, how="outer",
                    suffixes=[f"_{side}" for side in sides], validate="one_to_one")
    both = both.sort_values([f"_order_{side}" for side in sides], kind="mergesort")
    both["claim"] = both[f"claim_{sides[0]}"].fillna(both[f"claim_{sides[1]}"])
    for side in sides:
        both[f"verdict_{side}"] = both[f"verdict_{side}"].fillna("absent")
        both[f"fragile_{side}"] = both[f"fragile_{side}"].eq(True)  # absent: not fragile
    first, second = sides
    both["differs"] = both[f"verdict_{first}"] != both[f"verdict_{second}"]
    both["robust_flip"] = both["differs"] & ~both[f"fragile_{first}"] & ~both[f"fragile_{second}"]
    return both[[*CLAIM_KEYS, "claim", *(f"{c}_{side}" for side in sides for c in numbers), "differs",
                 "robust_flip"]].reset_index(drop=True)
