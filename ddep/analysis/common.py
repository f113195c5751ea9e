"""Shared constants and helpers for the analysis package: arm order/names/colours, sort keys,
the Student-t critical value, and atomic file writes.

Kept free of pandas/matplotlib imports so it is cheap to import from anywhere.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

from ddep.io import atomic_write_bytes, atomic_write_text  # noqa: F401  (re-exported)
from ddep.sweep import ARMS as ARM_ORDER  # noqa: F401  (paper order: table rows, bar order)
from ddep.sweep import DENOISING_ARMS  # noqa: F401  (re-exported)

ARM_DISPLAY: dict[str, str] = {
    "none": "Random init",
    "21k": "Supervised (21K)",
    "dep": "DeP",
    "ddep": "DDeP",
}
# Fixed colours so every figure uses the same colour for the same arm (colour-blind safe
# Okabe-Ito subset: grey baseline, blue supervised, orange DeP, green DDeP).
ARM_COLOURS: dict[str, str] = {
    "none": "#7f7f7f",
    "21k": "#0072B2",
    "dep": "#E69F00",
    "ddep": "#009E73",
}
# Sigma / formulation / target label used by arms without denoising pretraining.
NO_SIGMA = "-"

# Columns that identify one cell of the grid (everything except the seed).
CELL_KEYS: list[str] = [
    "dataset", "label_fraction", "n_labelled", "arm", "sigma", "formulation", "target", "preset",
]
# Columns that identify one run.
RUN_KEYS: list[str] = CELL_KEYS + ["seed"]
# Columns that are read back from CSV as strings (labels like "1/30", "0.2", "-" must not be
# parsed as numbers or NaN).
STRING_COLUMNS: list[str] = [
    "dataset", "label_fraction", "arm", "sigma", "formulation", "target", "preset",
]


def arm_rank(arm: str) -> int:
    """Position of an arm in paper order; unknown arms sort after the known ones."""
    return ARM_ORDER.index(arm) if arm in ARM_ORDER else len(ARM_ORDER)


def arm_display(arm: str) -> str:
    """Display name of an arm ("ddep" -> "DDeP"); unknown arms are shown as they are."""
    return ARM_DISPLAY.get(arm, arm)


def fraction_value(label: str) -> float:
    """Numeric value of a label-fraction label: "1/30" -> 0.0333, "0.5" -> 0.5, "10%" -> 0.1,
    "full"/"all" -> 1.0. Unparseable labels give +inf so they sort last."""
    s = str(label).strip().lower()
    if s in ("full", "all"):
        return 1.0
    if re.fullmatch(r"\d+_\d+", s):  # file-name slug of a fraction: "1_30"
        s = s.replace("_", "/")
    try:
        if s.endswith("%"):
            return float(s[:-1]) / 100.0
        return float(Fraction(s))
    except (ValueError, ZeroDivisionError):
        return math.inf


def parse_sigma(label: str) -> tuple[str, tuple[float, ...]]:
    """Classify a sigma label: ("fixed", (v,)), ("interval", (lo, hi)) for "U(0.2,0.3)" (also
    the workflow's file-name slug "U0.2-0.3"), ("none", ()) for "-", or ("other", ()) for
    anything else."""
    s = str(label).strip()
    if s == NO_SIGMA:
        return "none", ()
    try:
        return "fixed", (float(s),)
    except ValueError:
        pass
    # Uniform interval "U(lo,hi)", tolerant of spaces and brackets, or the slug "Ulo-hi".
    if s[:1] in ("U", "u") and len(s) > 3:
        inner = s[1:].strip()
        parts = (inner.lstrip("([").rstrip(")]").split(",") if inner[:1] in "([" or "," in inner
                 else inner.split("-"))
        if len(parts) == 2:
            try:
                return "interval", (float(parts[0]), float(parts[1]))
            except ValueError:
                pass
    return "other", ()


def canonical_sigma(label: object) -> str:
    """Canonical sigma label as the training code writes it: 0.20 -> "0.2",
    "U0.2-0.3" / "U[0.2, 0.3]" -> "U(0.2,0.3)"; "-" and unknown labels are returned as they are."""
    kind, vals = parse_sigma(str(label))
    if kind == "fixed":
        return f"{vals[0]:g}"
    if kind == "interval":
        return f"U({vals[0]:g},{vals[1]:g})"
    return str(label).strip()


def sigma_sort_key(label: str) -> tuple:
    """Sort key for sigma labels: fixed values ascending, then intervals (by lower, upper
    bound), then anything else alphabetically, then "-"."""
    kind, vals = parse_sigma(label)
    order = {"fixed": 0, "interval": 1, "other": 2, "none": 3}[kind]
    return (order, vals, str(label))


def fraction_column_label(label_fraction: str, n_labelled: object) -> str:
    """Column/axis label for a label fraction, with the number of labelled images:
    "1/30 (10)"."""
    try:
        n = int(float(n_labelled))  # CSV round trips may give 10.0
    except (TypeError, ValueError):
        return str(label_fraction)
    return f"{label_fraction} ({n})"


# ---------------------------------------------------------------------------------------------
# Student t critical value, without scipy.
#
# For an integer number of degrees of freedom nu the central probability
# A(t|nu) = P(|T| < t) has a finite closed form (Abramowitz & Stegun 26.7.3/26.7.4), so the
# quantile is found exactly (to float precision) by bisection. Degrees of freedom here are
# (number of seeds - 1), always an integer.
# ---------------------------------------------------------------------------------------------


def _t_central_prob(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer df >= 1 (A&S 26.7.3/26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    c, s = math.cos(theta), math.sin(theta)
    if df % 2 == 1:
        if df == 1:
            return 2.0 * theta / math.pi
        term = total = c
        for k in range(3, df - 1, 2):  # cos + 2/3 cos^3 + (2*4)/(3*5) cos^5 + ... cos^(df-2)
            term *= c * c * (k - 1) / k
            total += term
        return 2.0 / math.pi * (theta + s * total)
    term = total = 1.0
    for k in range(2, df - 1, 2):  # 1 + 1/2 cos^2 + (1*3)/(2*4) cos^4 + ... cos^(df-2)
        term *= c * c * (k - 1) / k
        total += term
    return s * total


@lru_cache(maxsize=256)
def t_critical(df: int, confidence: float = 0.95) -> float:
    """Two-sided Student-t critical value t_{(1+confidence)/2, df}, e.g. t_critical(2) = 4.303.

    Exact for integer df (closed-form CDF + bisection). Returns NaN for df < 1."""
    if df < 1:
        return math.nan
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if df > 1000:
        # The closed-form series gets long; the Cornish-Fisher expansion around the normal
        # quantile (two terms) is accurate to ~1e-8 here.
        z = _normal_quantile(0.5 + confidence / 2.0)
        return z + (z**3 + z) / (4.0 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96.0 * df**2)
    lo, hi = 0.0, 1.0
    while _t_central_prob(hi, df) < confidence:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_central_prob(mid, df) < confidence:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def _normal_quantile(p: float) -> float:
    """Standard normal quantile by bisection on erf (only used for very large df)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * (1.0 + math.erf(mid / math.sqrt(2.0))) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def ci_halfwidth(std: float, n: int, confidence: float = 0.95) -> float:
    """Half-width of the t confidence interval of a mean: t_{n-1} * std / sqrt(n).
    NaN when n < 2 (no spread estimate from a single seed)."""
    if n is None or n < 2 or std is None or not math.isfinite(std):
        return math.nan
    return t_critical(int(n) - 1, confidence) * std / math.sqrt(n)


