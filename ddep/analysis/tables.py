"""Paper-style result tables (Markdown and LaTeX/booktabs) built from summary.csv.

(a) label efficiency: rows = arms (Random init, Supervised (21K), DeP, DDeP), columns = label
    fractions, DeP/DDeP at one sigma setting;
    Cells are ``mean ± 95% CI half-width`` of mIoU over seeds; the best of each column is bold;
(b) noise ablations, where run: one row per DeP/DDeP setting (sigma, formulation, target,
    conditioning) of each ablated fraction, its mIoU and its paired difference from the default.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .common import (
    DENOISING_ARMS,
    NoiseSetting,
    arm_display,
    arm_rank,
    at_default,
    atomic_write_text,
    choose_default_setting,
    describe_setting,
    fraction_column_label,
    fraction_value,
    parse_sigma,
    setting_mask,
    setting_of,
    sigma_sort_key,
)
from ddep.sweep import CONDITIONING, FORMULATIONS, TARGETS, run_name

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


def seed_text(ns: list[int]) -> str:
    """ "n=3" or "n=2–3" for the numbers of seeds behind a set of cells."""
    ns = [n for n in ns if n > 0]
    if not ns:
        return "n=0"
    lo, hi = min(ns), max(ns)
    return f"n={lo}" if lo == hi else f"n={lo}–{hi}"


def label_efficiency_grid(
    summary: pd.DataFrame, dataset: str, preset: str | None = None,
    default: NoiseSetting | None = None,
) -> Grid:
    """Grid for the label-efficiency table of one dataset (and preset): one row per arm, DeP
    and DDeP at the `default` noise setting (None: the setting with the most results)."""
    df = summary[summary["dataset"] == dataset]
    if preset is not None:
        df = df[df["preset"] == preset]
    default = default or choose_default_setting(df)
    df = at_default(df, default)
    fracs = fraction_columns(df) if not df.empty else []

    grid = Grid(title="", caption="", rows=[], cols=[label for _, label in fracs])
    col_of = dict(fracs)
    ns = []
    for arm in sorted(df["arm"].unique(), key=lambda a: (arm_rank(a), a)):
        row = arm_display(arm)
        grid.rows.append(row)
        grid.row_arm[row] = arm
        for _, r in df[df["arm"] == arm].iterrows():
            grid.cells[(row, col_of[r["label_fraction"]])] = (r["mIoU_mean"], r["mIoU_ci95"], int(r["n"]))
            ns.append(int(r["n"]))
    grid.sigma = default.sigma if default else None
    where = f"{dataset}" + (f", preset {preset}" if preset else "")
    grid.title = f"{where}: label efficiency (mIoU %)"
    grid.caption = (f"{where}. mIoU (%) as mean ± 95% CI half-width (t distribution) over "
                    f"seeds ({seed_text(ns)}); columns: labelled fraction (images); "
                    f"{describe_setting(default)}. Best per column in bold.")
    return grid


def ablated_cells(summary: pd.DataFrame) -> pd.DataFrame:
    """DeP/DDeP rows of the (arm, fraction) cells run at more than one noise setting."""
    den = summary[summary["arm"].isin(DENOISING_ARMS)]
    # a summary row is one setting of its (dataset, preset, arm, fraction)
    return den[den.groupby(["dataset", "preset", "arm", "label_fraction"])["arm"].transform("size") > 1]


def _diff_text(r) -> str:
    if not math.isfinite(r.mean_diff):
        return DASH_MD
    if not math.isfinite(r.ci95):
        return f"{r.mean_diff:+.2f} (n=1)"
    return f"{r.mean_diff:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"


def noise_table(summary: pd.DataFrame, paired: pd.DataFrame,
                default: NoiseSetting | None) -> pd.DataFrame:
    """The noise ablations of one dataset (and preset): one row per DeP/DDeP setting of each
    ablated fraction, with its mIoU and its paired difference from the default setting."""
    df = ablated_cells(summary)
    if df.empty:
        return pd.DataFrame()
    rows = []
    # per arm and fraction, the paper's formulation/target/conditioning first, sigma ascending
    order = df.assign(_a=df["arm"].map(arm_rank), _f=df["label_fraction"].map(fraction_value),
                      _v=[(FORMULATIONS.index(f), TARGETS.index(t), CONDITIONING.index(c))
                          for f, t, c in zip(df["formulation"], df["target"], df["noise_conditioning"])],
                      _s=df["sigma"].map(sigma_sort_key))
    for _, r in order.sort_values(["_a", "_f", "_v", "_s"], kind="mergesort").iterrows():
        setting = setting_of(r)
        if setting == default:
            diff = "default"
        else:
            match = paired[(paired["arm"] == r["arm"]) & (paired["label_fraction"] == r["label_fraction"])
                           & (paired["preset"] == r["preset"])
                           & (paired["baseline"] == run_name(r["arm"], default))
                           & setting_mask(paired, setting)] if default else paired.iloc[:0]
            diff = _diff_text(match.iloc[0]) if len(match) else DASH_MD
        rows.append({
            "arm": arm_display(r["arm"]),
            "images": fraction_column_label(r["label_fraction"], r["n_labelled"]),
            "sigma": setting.sigma, "formulation": setting.formulation, "target": setting.target,
            "conditioning": setting.noise_conditioning,
            "mIoU": _cell_text(r["mIoU_mean"], r["mIoU_ci95"], " ± "), "n": int(r["n"]),
            "vs default [95% CI]": diff})
    return pd.DataFrame(rows)


def _noise_caption(where: str, default: NoiseSetting | None) -> str:
    base = f"sigma = {default.sigma}, {default.formulation}, predict {default.target}, " \
           f"conditioning {default.noise_conditioning}" if default else "none"
    return (f"{where}. DeP/DDeP pretrained at each noise setting, then fine-tuned: mIoU (%) as "
            f"mean ± 95% CI half-width over seeds, and the paired difference from the same arm "
            f"at the default setting ({base}) over matched seeds, with its 95% t CI. Sigma U(a,b): "
            f"drawn uniformly per image; scaled: sqrt(g)x + sqrt(1-g)eps, g = 1/(1+sigma^2).")


def render_noise_markdown(table: pd.DataFrame, where: str, default: NoiseSetting | None) -> str:
    return "\n".join([f"**{where}: noise ablations (mIoU %)**", "",
                      table.to_markdown(index=False, colalign=["left"] * 6 + ["center"] * 3), "",
                      _noise_caption(where, default), ""])


def render_noise_latex(table: pd.DataFrame, where: str, default: NoiseSetting | None,
                       label: str) -> str:
    styler = table.style.hide(axis="index").format(escape="latex")
    styler = styler.format_index(escape="latex", axis=1)
    tex = styler.to_latex(hrules=True, position="t", position_float="centering", label=label,
                          caption=tex_escape(_noise_caption(where, default)))
    return tex.replace("±", r"$\pm$").replace("sigma", r"$\sigma$")


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
    summary: pd.DataFrame, paired: pd.DataFrame, out_dir: str | os.PathLike,
    default: NoiseSetting | None = None,
) -> tuple[list[Path], list[str]]:
    """Write ``{stem}_label_efficiency.{md,tex}`` for every dataset (stem = dataset, or
    dataset_preset when a dataset has several presets), and ``{stem}_noise.{md,tex}`` where a
    noise ablation has runs. Returns (written files, notes about skipped tables)."""
    out = Path(out_dir)
    files: list[Path] = []
    notes: list[str] = []
    if summary.empty:
        return files, ["no results: no tables written"]
    for ds, preset, stem in table_groups(summary):
        sub = summary[(summary["dataset"] == ds) & (summary["preset"] == preset)]
        multi = stem != ds
        den = sub[sub["arm"].isin(DENOISING_ARMS)]
        if default is not None and not den.empty and not setting_mask(den, default).any():
            notes.append(f"{stem}: no DeP/DDeP results at the default setting {default.slug}")
        grid = label_efficiency_grid(sub, ds, preset if multi else None, default)
        files.append(atomic_write_text(out / f"{stem}_label_efficiency.md", render_markdown(grid)))
        files.append(atomic_write_text(out / f"{stem}_label_efficiency.tex",
                                       render_latex(grid, f"tab:{stem}_label_efficiency")))
        table = noise_table(sub, paired[(paired["dataset"] == ds) & (paired["preset"] == preset)],
                            default)
        if table.empty:
            continue
        where = f"{ds}" + (f", preset {preset}" if multi else "")
        files.append(atomic_write_text(out / f"{stem}_noise.md",
                                       render_noise_markdown(table, where, default)))
        files.append(atomic_write_text(out / f"{stem}_noise.tex",
                                       render_noise_latex(table, where, default, f"tab:{stem}_noise")))
    return files, notes
