"""Shared by the analysis modules: arm names and colours, paper order, the default-setting view, the t interval;
re-exports the run identity and its labels (ddep.sweep) and atomic writes."""

import math

import pandas as pd
import scipy.optimize
import scipy.stats

from ddep.io import atomic_write_bytes, atomic_write_text  # noqa: F401  (re-exported)
from ddep.sweep import (  # noqa: F401  (re-exported: the run identity and its labels; the presets in paper order)
    ARM_ORDER, CELL_KEYS, CONDITIONING, FORMULATIONS, PRESET_ARMS, NO_SETTING, NOISE_AXES, RUN_KEYS, STRING_COLUMNS, TARGETS,
    NoiseSetting, fraction_value, parse_sigma, sigma_label, sigma_sort_key)

CONFIDENCE = 0.95  # of every interval written (the *_ci95 columns)
# Seeds are matched on these keys (plus "seed"): differences are within one model.
PAIR_KEYS: list[str] = ["dataset", "model", "label_fraction", "n_labelled"]
ARM_DISPLAY: dict[str, str] = {"none": "Random init", "21k": "Supervised (21K)", "dep": "DeP", "ddep": "DDeP"}
# One colour per arm in every figure (colour-blind safe Okabe-Ito subset).
ARM_COLOURS: dict[str, str] = {"none": "#7f7f7f", "21k": "#0072B2", "dep": "#E69F00", "ddep": "#009E73"}
# Sort keys of the columns with a paper order (unknown arms after the known ones); others as text. With variants:
# DeP/DDeP's formulation, target and conditioning too, the paper's setting first.
_ORDER = {"label_fraction": fraction_value, "sigma": sigma_sort_key, "seed": int,
          "arm": lambda a: (ARM_ORDER.index(a) if a in ARM_ORDER else len(ARM_ORDER), a)}
_VARIANT_ORDER = {"formulation": FORMULATIONS.index, "target": TARGETS.index, "noise_conditioning": CONDITIONING.index}
ROW_ORDER: list[str] = ["dataset", "model", "label_fraction", "arm", *NOISE_AXES, "seed"]  # of runs, summary, paired


def in_paper_order(df: pd.DataFrame, by: list[str] = ROW_ORDER, variants: bool = False) -> pd.DataFrame:
    """`df` stably sorted on the columns `by` that it has, in paper order."""
    order = {**_ORDER, **(_VARIANT_ORDER if variants else {})}
    return df.sort_values([c for c in by if c in df], kind="mergesort", key=lambda col: col.astype(
        pd.CategoricalDtype(sorted(set(col), key=order.get(col.name, str)), ordered=True)))


def rows_of(df: pd.DataFrame, dataset: str, model: str | None = None) -> pd.DataFrame:
    """The rows of `dataset` (and of `model`, unless None)."""
    return df[(df["dataset"] == dataset) & ((df["model"] == model) if model is not None else True)]


def arm_display(arm: str) -> str:
    """Display name of an arm ("ddep" -> "DDeP"); unknown arms as they are."""
    return ARM_DISPLAY.get(arm, arm)


def denoised(df: pd.DataFrame) -> pd.Series:
    """Rows of the arms whose decoder was denoised (DeP, DDeP, and any such arm of the user's): they carry a
    noise setting, the others "-"."""
    return df["sigma"].astype(str) != NO_SETTING


def denoised_arms(df: pd.DataFrame) -> list[str]:
    """The denoised arms of `df`, in paper order (the user's after the presets)."""
    return list(in_paper_order(df[denoised(df)], ["arm"])["arm"].unique())


def setting_mask(df: pd.DataFrame, setting: NoiseSetting) -> pd.Series:
    """Rows of DeP/DDeP at `setting` (all four noise axes equal)."""
    same = (df[list(NOISE_AXES)].astype(str) == pd.Series(setting.columns())).all(axis=1)
    return denoised(df) & same


def at_default(df: pd.DataFrame, setting: NoiseSetting | None) -> pd.DataFrame:
    """The label-efficiency view: none and 21K, and DeP/DDeP only at `setting`."""
    keep = ~denoised(df)
    return df[keep if setting is None else keep | setting_mask(df, setting)]


def choose_default_setting(df: pd.DataFrame) -> NoiseSetting | None:
    """The noise setting with the most DeP/DDeP rows (ties: first in sigma order); None without any."""
    counts = df[denoised(df)].groupby(list(NOISE_AXES)).size()
    if counts.empty:
        return None
    return NoiseSetting(*min(counts[counts == counts.max()].index, key=lambda k: (sigma_sort_key(k[0]), k[1:])))


def setting_differences(formulation: str, target: str, conditioning: str) -> str:
    """ " (scaled, predicting x, conditioned on sigma)": how a setting differs from the paper's."""
    extra = [name for name, on in (("scaled", formulation == "scaled"), ("predicting x", target == "x"),
                                   ("conditioned on sigma", conditioning == "on")) if on]
    return f" ({', '.join(extra)})" if extra else ""


def describe_setting(setting: NoiseSetting | None) -> str:
    """"DeP/DDeP at sigma = 0.2" (plus the axes that differ from the paper's)."""
    return "no DeP/DDeP results" if setting is None else f"DeP/DDeP at sigma = {setting.sigma}" + setting_differences(
        setting.formulation, setting.target, setting.noise_conditioning)


def seed_count_text(ns, noun: bool = False) -> str:
    """ "n=3" or "n=2–3" for the seed counts of a set of cells; `noun`: "n=3 seeds", "n=1 seed"."""
    ns = [int(n) for n in ns if n > 0]
    text = "n=0" if not ns else f"n={min(ns)}" if min(ns) == max(ns) else f"n={min(ns)}–{max(ns)}"
    return text + ((" seed" if text == "n=1" else " seeds") if noun else "")


def fraction_column_label(label_fraction: str, n_labelled: object) -> str:
    """Label of a fraction with its number of labelled images: "1/30 (10)"."""
    try:
        return f"{label_fraction} ({int(float(n_labelled))})"  # CSV round trips may give 10.0
    except (TypeError, ValueError):
        return str(label_fraction)


def t_critical(df: int, confidence: float = 0.95) -> float:
    """Two-sided Student-t critical value, e.g. t_critical(2) = 4.303; NaN for df < 1."""
    return float(scipy.stats.t.ppf(0.5 + confidence / 2.0, df)) if df >= 1 else math.nan


def _no_spread(std: float, n: int) -> bool:  # too few pairs, or an unknown std: no interval
    return n is None or n < 2 or std is None or not math.isfinite(std)


def ci_halfwidth(std: float, n: int, confidence: float = 0.95) -> float:
    """Half-width of the t interval of a mean, t_{n-1} * std / sqrt(n); NaN for n < 2."""
    return math.nan if _no_spread(std, n) else t_critical(int(n) - 1, confidence) * std / math.sqrt(n)


def minimal_detectable_effect(std: float, n: int, confidence: float = 0.95, power: float = 0.8) -> float:
    """The true mean difference a two-sided paired t test at level 1 - confidence rejects with probability `power`
    at `n` pairs of sample std `std` (noncentral t, noncentrality delta * sqrt(n) / std); NaN without a spread."""
    if _no_spread(std, n) or std == 0:
        return math.nan if _no_spread(std, n) else 0.0
    df, crit = int(n) - 1, t_critical(int(n) - 1, confidence)

    def shortfall(nc: float) -> float:  # rejection probability minus power; the lower tail as
        # the upper tail at -nc (scipy's nct.cdf far left can be NaN)
        return float(scipy.stats.nct.sf(crit, df, nc) + scipy.stats.nct.sf(crit, df, -nc)) - power

    high = crit + 1.0  # nct loses precision far out: widen the bracket only as needed
    while shortfall(high) < 0:
        high *= 2
    return scipy.optimize.brentq(shortfall, 0.0, high, xtol=1e-10) * std / math.sqrt(n)


def seeds_text(seeds: pd.Series) -> str:
    return ";".join(map(str, sorted(seeds.astype(int))))


def diff_stats(diff: pd.Series, seeds: pd.Series) -> dict:
    """Mean, sample std, n, t CI (half-width and bounds) and n > 0 of paired differences."""
    v = diff.dropna()
    mean, std, ci = v.mean(), v.std(ddof=1), ci_halfwidth(v.std(ddof=1), len(v), CONFIDENCE)
    return {"n_pairs": len(v), "mean_diff": mean, "std_diff": std, "ci95": ci, "ci_low": mean - ci,
            "ci_high": mean + ci, "n_positive": int((diff > 0).sum()), "seeds": seeds_text(seeds)}
