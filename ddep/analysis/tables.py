"""Paper-style result tables (Markdown and LaTeX/booktabs) built from summary.csv.

(a) label efficiency: rows = arms (Random init, Supervised (21K), DeP, DDeP), columns = label
    fractions, DeP/DDeP at one sigma setting;
(b) sigma ablation: rows = sigma settings, columns = (DeP, DDeP) x label fraction.
Cells are ``mean ± 95% CI half-width`` of mIoU over seeds; the best cell of each column is bold.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .common import (
    ARM_ORDER,
    DENOISING_ARMS,
    arm_display,
    atomic_write_text,
    fraction_column_label,
    fraction_value,
    parse_sigma,
    sigma_sort_key,
)

DASH_MD = "–"
DASH_TEX = "--"


@dataclass
class Grid:
    """A rendered-agnostic table: row labels, column labels (optionally grouped under a top
    header) and cells (mean, ci, n)."""

    title: str
    caption: str
    rows: list[str]
    cols: list[str]
    col_groups: list[str] | None = None  # one top-header label per column, or None
    cells: dict[tuple[str, str], tuple[float, float, int]] = field(default_factory=dict)
    row_arm: dict[str, str] = field(default_factory=dict)  # row label -> arm (for colours)
    sigma: str | None = None  # sigma setting shown for DeP/DDeP (label-efficiency grids)


# ---------------------------------------------------------------------------------------------
# Selecting data
# ---------------------------------------------------------------------------------------------


def table_groups(summary: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(dataset, preset, file stem) for each table/figure group. The stem is the dataset name,
    with ``_<preset>`` appended only when a dataset has results for several presets."""
    out = []
    for ds in sorted(summary["dataset"].astype(str).unique()):
        presets = sorted(summary.loc[summary["dataset"] == ds, "preset"].astype(str).unique())
        for p in presets:
            out.append((ds, p, ds if len(presets) == 1 else f"{ds}_{p}"))
    return out


def fraction_columns(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(label_fraction, column label) sorted by numeric fraction."""
    pairs = df[["label_fraction", "n_labelled"]].drop_duplicates()
    pairs = pairs.assign(_v=pairs["label_fraction"].map(fraction_value))
    pairs = pairs.sort_values(["_v", "label_fraction"], kind="mergesort")
    seen: dict[str, str] = {}
    for lf, n in zip(pairs["label_fraction"], pairs["n_labelled"]):
        seen.setdefault(str(lf), fraction_column_label(lf, n))
    return list(seen.items())


def _variant_suffix(formulation: str, target: str, several: bool) -> str:
    # Only name the formulation/target when the table would otherwise merge different variants.
    return f" ({formulation}, {target})" if several else ""


def choose_default_sigma(summary: pd.DataFrame) -> str | None:
    """The sigma setting to show for DeP/DDeP when none is given: the one with results in the
    most cells (ties: first in sigma order). None when there are no denoising results."""
    den = summary[summary["arm"].isin(DENOISING_ARMS)]
    if den.empty:
        return None
    counts = den.groupby("sigma").size()
    best = counts.max()
    return min((s for s, c in counts.items() if c == best), key=sigma_sort_key)


def seed_text(ns: list[int]) -> str:
    """ "n=3" or "n=2–3" for the numbers of seeds behind a set of cells."""
    ns = [n for n in ns if n > 0]
    if not ns:
        return "n=0"
    lo, hi = min(ns), max(ns)
    return f"n={lo}" if lo == hi else f"n={lo}–{hi}"


def label_efficiency_grid(
    summary: pd.DataFrame, dataset: str, preset: str | None = None,
    default_sigma: str | None = None,
) -> Grid:
    """Grid for the label-efficiency table of one dataset (and preset)."""
    df = summary[summary["dataset"] == dataset]
    if preset is not None:
        df = df[df["preset"] == preset]
    sigma = default_sigma if default_sigma is not None else choose_default_sigma(df)
    keep = ~df["arm"].isin(DENOISING_ARMS) | (df["sigma"] == sigma)
    df = df[keep]
    fracs = fraction_columns(df) if not df.empty else []

    grid = Grid(title="", caption="", rows=[], cols=[label for _, label in fracs])
    col_of = dict(fracs)
    arms = sorted(df["arm"].unique(), key=lambda a: (ARM_ORDER.index(a) if a in ARM_ORDER
                                                     else len(ARM_ORDER), a))
    ns = []
    for arm in arms:
        sub = df[df["arm"] == arm]
        variants = sub[["formulation", "target"]].drop_duplicates().values.tolist()
        for form, tgt in sorted(variants):
            row = arm_display(arm) + _variant_suffix(form, tgt, len(variants) > 1)
            grid.rows.append(row)
            grid.row_arm[row] = arm
            for _, r in sub[(sub["formulation"] == form) & (sub["target"] == tgt)].iterrows():
                grid.cells[(row, col_of[r["label_fraction"]])] = (
                    r["mIoU_mean"], r["mIoU_ci95"], int(r["n"]))
                ns.append(int(r["n"]))
    grid.sigma = sigma
    where = f"{dataset}" + (f", preset {preset}" if preset else "")
    grid.title = f"{where}: label efficiency (mIoU %)"
    sig = f"DeP/DDeP at sigma = {sigma}" if sigma is not None else "no DeP/DDeP results"
    grid.caption = (f"{where}. mIoU (%) as mean ± 95% CI half-width (t distribution) over "
                    f"seeds ({seed_text(ns)}); columns: labelled fraction (images); "
                    f"{sig}. Best per column in bold.")
    return grid


def sigma_grid(summary: pd.DataFrame, dataset: str, preset: str | None = None) -> Grid:
    """Grid for the sigma ablation table of one dataset (and preset)."""
    df = summary[(summary["dataset"] == dataset) & summary["arm"].isin(DENOISING_ARMS)]
    if preset is not None:
        df = df[df["preset"] == preset]
    fracs = fraction_columns(df) if not df.empty else []
    arms = [a for a in DENOISING_ARMS if (df["arm"] == a).any()]
    cols, groups = [], []
    for arm in arms:
        for _, label in fracs:
            cols.append(f"{arm_display(arm)} {label}")
            groups.append(arm_display(arm))
    grid = Grid(title="", caption="", rows=[], cols=cols, col_groups=groups)
    col_of = dict(fracs)
    variants = sorted(df[["formulation", "target"]].drop_duplicates().values.tolist())
    ns = []
    for sig in sorted(df["sigma"].unique(), key=sigma_sort_key):
        for form, tgt in variants:
            sub = df[(df["sigma"] == sig) & (df["formulation"] == form) & (df["target"] == tgt)]
            if sub.empty:
                continue
            row = sig + _variant_suffix(form, tgt, len(variants) > 1)
            grid.rows.append(row)
            for _, r in sub.iterrows():
                col = f"{arm_display(r['arm'])} {col_of[r['label_fraction']]}"
                grid.cells[(row, col)] = (r["mIoU_mean"], r["mIoU_ci95"], int(r["n"]))
                ns.append(int(r["n"]))
    where = f"{dataset}" + (f", preset {preset}" if preset else "")
    grid.title = f"{where}: noise level sigma (mIoU %)"
    grid.caption = (f"{where}. Effect of the pretraining noise level sigma (fixed values, then "
                    f"uniform intervals U(a,b)). mIoU (%) as mean ± 95% CI half-width over "
                    f"seeds ({seed_text(ns)}). Best per column in bold.")
    return grid


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _best_per_column(grid: Grid) -> dict[str, str]:
    """Column -> displayed best mean. Compared after rounding so displayed ties are all bold."""
    best: dict[str, str] = {}
    for col in grid.cols:
        vals = [grid.cells[(r, col)][0] for r in grid.rows if (r, col) in grid.cells]
        vals = [v for v in vals if v is not None and math.isfinite(v)]
        if vals:
            best[col] = f"{max(round(v, 1) for v in vals):.1f}"
    return best


def _cell_text(mean: float, ci: float, pm: str) -> str:
    if ci is None or not math.isfinite(ci):
        return f"{mean:.1f}"  # a single seed has no interval
    return f"{mean:.1f}{pm}{ci:.1f}"


def render_markdown(grid: Grid) -> str:
    """Render a Grid as a GitHub-flavoured Markdown table with a bold title and caption."""
    best = _best_per_column(grid)
    header = ["", *grid.cols]
    lines = [f"**{grid.title}**", "", "| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + [":---:"] * len(grid.cols)) + "|"]
    for row in grid.rows:
        cells = [row]
        for col in grid.cols:
            if (row, col) not in grid.cells or not math.isfinite(grid.cells[(row, col)][0]):
                cells.append(DASH_MD)
                continue
            mean, ci, _ = grid.cells[(row, col)]
            text = _cell_text(mean, ci, " ± ")
            cells.append(f"**{text}**" if f"{mean:.1f}" == best.get(col) else text)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", grid.caption, ""]
    return "\n".join(lines)


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    """Escape LaTeX special characters in plain text."""
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))


def _tex_label(text: str) -> str:
    """Row label for LaTeX: sigma labels typeset as math, others escaped."""
    base, _, rest = text.partition(" (")
    kind, vals = parse_sigma(base)
    suffix = tex_escape(" (" + rest) if rest else ""
    if kind == "fixed":
        return f"${base}$" + suffix
    if kind == "interval":
        return rf"$\mathcal{{U}}({vals[0]:g}, {vals[1]:g})$" + suffix
    return tex_escape(text)


def render_latex(grid: Grid, label: str = "") -> str:
    """Render a Grid as a LaTeX table (booktabs; needs \\usepackage{booktabs})."""
    best = _best_per_column(grid)
    ncol = len(grid.cols)
    caption = tex_escape(grid.caption).replace("±", r"$\pm$").replace("sigma", r"$\sigma$")
    caption = caption.replace("–", "--")
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{caption}}}"]
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{l{'c' * ncol}}}", r"\toprule"]
    sub_cols = grid.cols
    if grid.col_groups:
        # Two header rows: arm groups with \cmidrule, then label fractions.
        spans: list[tuple[str, int]] = []
        for g in grid.col_groups:
            if spans and spans[-1][0] == g:
                spans[-1] = (g, spans[-1][1] + 1)
            else:
                spans.append((g, 1))
        top, rules, start = [""], [], 2
        for g, span in spans:
            top.append(rf"\multicolumn{{{span}}}{{c}}{{{tex_escape(g)}}}")
            rules.append(rf"\cmidrule(lr){{{start}-{start + span - 1}}}")
            start += span
        lines.append(" & ".join(top) + r" \\")
        lines.append(" ".join(rules))
        sub_cols = [c[len(g) + 1:] if c.startswith(g + " ") else c
                    for c, g in zip(grid.cols, grid.col_groups)]
    lines.append(" & ".join(["", *(tex_escape(c) for c in sub_cols)]) + r" \\")
    lines.append(r"\midrule")
    for row in grid.rows:
        cells = [_tex_label(row)]
        for col in grid.cols:
            if (row, col) not in grid.cells or not math.isfinite(grid.cells[(row, col)][0]):
                cells.append(DASH_TEX)
                continue
            mean, ci, _ = grid.cells[(row, col)]
            text = _cell_text(mean, ci, r" $\pm$ ")
            cells.append(rf"\textbf{{{text}}}" if f"{mean:.1f}" == best.get(col) else text)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def write_tables(
    summary: pd.DataFrame, out_dir: str | os.PathLike, default_sigma: str | None = None,
) -> tuple[list[Path], list[str]]:
    """Write ``{stem}_label_efficiency.{md,tex}`` and ``{stem}_sigma.{md,tex}`` for every
    dataset (stem = dataset, or dataset_preset when a dataset has several presets).
    Returns (written files, notes about skipped tables)."""
    out = Path(out_dir)
    files: list[Path] = []
    notes: list[str] = []
    if summary.empty:
        return files, ["no results: no tables written"]
    for ds, preset, stem in table_groups(summary):
        sub = summary[(summary["dataset"] == ds) & (summary["preset"] == preset)]
        multi = stem != ds
        den = sub[sub["arm"].isin(DENOISING_ARMS)]
        if (default_sigma is not None and not den.empty
                and not (den["sigma"] == default_sigma).any()):
            notes.append(f"{stem}: no DeP/DDeP results at default sigma {default_sigma}")
        grid = label_efficiency_grid(sub, ds, preset if multi else None, default_sigma)
        files.append(atomic_write_text(out / f"{stem}_label_efficiency.md", render_markdown(grid)))
        files.append(atomic_write_text(out / f"{stem}_label_efficiency.tex",
                                       render_latex(grid, f"tab:{stem}_label_efficiency")))
        if den.empty:
            notes.append(f"{stem}: no DeP/DDeP results, sigma table skipped")
            continue
        grid = sigma_grid(sub, ds, preset if multi else None)
        files.append(atomic_write_text(out / f"{stem}_sigma.md", render_markdown(grid)))
        files.append(atomic_write_text(out / f"{stem}_sigma.tex",
                                       render_latex(grid, f"tab:{stem}_sigma")))
    return files, notes
