"""Figures from summary.csv (never from the per-run JSONs, so figures always match the tables).

Per dataset:
(a) ``{stem}_label_efficiency.{png,pdf}``: grouped bars of mIoU vs label fraction, one bar per
    arm in paper order, error bars = 95% CI over seeds;
(b) ``{stem}_sigma.{png,pdf}``: mIoU vs fixed sigma (log x) per denoising arm, one panel per
    label fraction; uniform-interval settings are dashed horizontal reference lines in the
    arm's colour.
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # headless: figures are only ever written to files

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from .aggregate import read_csv  # noqa: E402
from .common import (  # noqa: E402
    ARM_COLOURS,
    DENOISING_ARMS,
    arm_display,
    atomic_write_bytes,
    parse_sigma,
    sigma_sort_key,
)
from .tables import fraction_columns, label_efficiency_grid, seed_text, table_groups  # noqa: E402

DPI = 150
# Fixed fonts and sizes so figures look the same on every machine (DejaVu Sans ships with
# matplotlib), on top of seaborn's whitegrid style.
STYLE: dict = {
    **sns.axes_style("whitegrid"),
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 12,
    "pdf.fonttype": 42,  # embed TrueType so text stays editable/searchable in the PDF
}
FALLBACK_COLOURS = sns.color_palette("colorblind", 10).as_hex()
INTERVAL_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1)))
VARIANT_MARKERS = ("o", "s", "^", "D", "v")
VARIANT_HATCHES = ("", "//", "..", "xx")


def _colour(arm: str) -> str:
    if arm in ARM_COLOURS:
        return ARM_COLOURS[arm]
    return FALLBACK_COLOURS[sum(map(ord, arm)) % len(FALLBACK_COLOURS)]  # stable per name


def _seeds(ns: list[int]) -> str:
    """ "n=3 seeds" / "n=1 seed" / "n=2–3 seeds"."""
    text = seed_text(ns)
    return f"{text} seed" if text == "n=1" else f"{text} seeds"


def _wrap(title: str, fig: Figure) -> str:
    # Wrap long titles to the figure width (about 11 characters per inch at 11-12 pt).
    return textwrap.fill(title, width=max(30, int(fig.get_figwidth() * 11)))


def _new_figure(width: float, height: float) -> Figure:
    # A bare Figure with an Agg canvas: no pyplot global state, no figure leaks.
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, stem: str | os.PathLike) -> list[Path]:
    """Save `fig` as ``stem.png`` (dpi 150) and ``stem.pdf``, each written atomically."""
    paths = []
    for fmt in ("png", "pdf"):
        buf = io.BytesIO()
        # No timestamps in the metadata so re-running gives the same bytes.
        meta = {"CreationDate": None} if fmt == "pdf" else {}
        with matplotlib.rc_context(STYLE):
            fig.savefig(buf, format=fmt, dpi=DPI, metadata=meta)
        paths.append(atomic_write_bytes(Path(f"{stem}.{fmt}"), buf.getvalue()))
    return paths


def label_efficiency_figure(
    summary: pd.DataFrame, dataset: str, preset: str | None = None,
    default_sigma: str | None = None,
) -> Figure | None:
    """Grouped bar chart of mIoU vs label fraction for one dataset; None when it has no data."""
    grid = label_efficiency_grid(summary, dataset, preset, default_sigma)
    if not grid.rows or not grid.cols:
        return None
    with matplotlib.rc_context(STYLE):
        nrow, ncol = len(grid.rows), len(grid.cols)
        # Width grows with the number of bars so labels never collide.
        fig = _new_figure(max(6.0, 1.2 + ncol * (0.35 * nrow + 0.5)), 4.2)
        ax = fig.add_subplot()
        width = 0.8 / nrow
        x = np.arange(ncol)
        ns, top = [], 0.0
        variant_no: dict[str, int] = {}
        for i, row in enumerate(grid.rows):
            arm = grid.row_arm[row]
            k = variant_no[arm] = variant_no.get(arm, -1) + 1
            cells = [grid.cells.get((row, c), (math.nan, math.nan, 0)) for c in grid.cols]
            means = np.array([m for m, _, _ in cells], dtype=float)
            cis = np.array([c for _, c, _ in cells], dtype=float)
            ns += [n for _, _, n in cells if n]
            pos = x - 0.4 + width * (i + 0.5)
            ax.bar(pos, np.nan_to_num(means), width * 0.92, label=row, color=_colour(arm),
                   edgecolor="black", linewidth=0.5,
                   hatch=VARIANT_HATCHES[k % len(VARIANT_HATCHES)])
            ok = np.isfinite(means) & np.isfinite(cis)  # single-seed cells have no error bar
            if ok.any():
                ax.errorbar(pos[ok], means[ok], yerr=cis[ok], fmt="none", ecolor="black",
                            elinewidth=1.0, capsize=3)
            if np.isfinite(means).any():
                top = max(top, float(np.nanmax(means + np.nan_to_num(cis))))
        ax.set_xticks(x, grid.cols)
        ax.set_xlabel("labelled fraction (images)")
        ax.set_ylabel("mIoU (%)")
        ax.set_ylim(0, min(100.0, top * 1.12) if top > 0 else 1.0)
        ax.grid(axis="x", visible=False)
        where = dataset + (f" [{preset}]" if preset else "")
        sig = f", DeP/DDeP at σ = {grid.sigma}" if grid.sigma is not None else ""
        ax.set_title(_wrap(f"{where}: label efficiency ({_seeds(ns)}{sig})", fig))
        ax.legend(loc="upper left", frameon=True, ncols=min(nrow, 4))
    return fig


def sigma_figure(
    summary: pd.DataFrame, dataset: str, preset: str | None = None,
) -> Figure | None:
    """mIoU vs fixed sigma (log x), one panel per label fraction, lines per denoising arm;
    interval settings as dashed horizontal lines. None when there are no DeP/DDeP results."""
    df = summary[(summary["dataset"] == dataset) & summary["arm"].isin(DENOISING_ARMS)]
    if preset is not None:
        df = df[df["preset"] == preset]
    df = df[df["mIoU_mean"].notna()]
    if df.empty:
        return None
    kinds = df["sigma"].map(lambda s: parse_sigma(s)[0])
    df = df.assign(_kind=kinds, _x=df["sigma"].map(
        lambda s: parse_sigma(s)[1][0] if parse_sigma(s)[0] == "fixed" else math.nan))
    fracs = fraction_columns(df)
    variants = sorted(df[["formulation", "target"]].drop_duplicates().values.tolist())
    fixed_x = sorted(df.loc[df["_kind"] == "fixed", "_x"].unique())
    intervals = sorted(df.loc[df["_kind"] == "interval", "sigma"].unique(), key=sigma_sort_key)
    iv_style = {s: INTERVAL_STYLES[i % len(INTERVAL_STYLES)] for i, s in enumerate(intervals)}

    with matplotlib.rc_context(STYLE):
        ncols = min(len(fracs), 4)
        nrows = math.ceil(len(fracs) / ncols)
        # Room on the right for the legend; a minimum width keeps the title readable.
        fig = _new_figure(max(7.5, 3.4 * ncols + 2.6), 3.0 * nrows + 0.8)
        axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
        handles: dict[str, Line2D] = {}
        for ax, (lf, label) in zip(axes, fracs):
            sub = df[df["label_fraction"] == lf]
            for arm in DENOISING_ARMS:
                for k, (form, tgt) in enumerate(variants):
                    cur = sub[(sub["arm"] == arm) & (sub["formulation"] == form)
                              & (sub["target"] == tgt)]
                    if cur.empty:
                        continue
                    name = arm_display(arm) + (f" ({form}, {tgt})" if len(variants) > 1 else "")
                    colour = _colour(arm)
                    pts = cur[cur["_kind"] == "fixed"].sort_values("_x")
                    if not pts.empty:
                        yerr = pts["mIoU_ci95"].to_numpy(dtype=float)
                        ax.errorbar(pts["_x"], pts["mIoU_mean"],
                                    yerr=np.where(np.isfinite(yerr), yerr, 0.0),
                                    color=colour, marker=VARIANT_MARKERS[k % 5], markersize=5,
                                    linewidth=1.6, capsize=3)
                        handles.setdefault(name, Line2D([], [], color=colour, linewidth=1.6,
                                                        marker=VARIANT_MARKERS[k % 5]))
                    for _, r in cur[cur["_kind"] == "interval"].iterrows():
                        ls = iv_style[r["sigma"]]
                        ax.axhline(r["mIoU_mean"], color=colour, linestyle=ls, linewidth=1.3)
                        handles.setdefault(f"{name}, σ ~ {r['sigma']}",
                                           Line2D([], [], color=colour, linestyle=ls,
                                                  linewidth=1.3))
            ax.set_xscale("log")
            if fixed_x:
                lo, hi = min(fixed_x), max(fixed_x)
                ax.set_xlim(lo / 1.5, hi * 1.5)
                ax.set_xticks(fixed_x, [f"{v:g}" for v in fixed_x])
                ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_title(f"label fraction {label}")
            ax.set_xlabel("σ (fixed)")
        for ax in axes[len(fracs):]:
            ax.set_visible(False)
        for ax in axes[::ncols]:
            ax.set_ylabel("mIoU (%)")
        where = dataset + (f" [{preset}]" if preset else "")
        ns = _seeds(df["n"].astype(int).tolist())
        fig.suptitle(_wrap(f"{where}: mIoU vs pretraining noise σ ({ns})", fig))
        fig.legend(list(handles.values()), list(handles.keys()), loc="outside right center",
                   frameon=True, title="dashed: σ ~ U(a,b)" if intervals else None)
    return fig


def write_figures(
    results_dir: str | os.PathLike, out_dir: str | os.PathLike,
    default_sigma: str | None = None, quiet: bool = False,
) -> tuple[list[Path], list[str]]:
    """Read ``summary.csv`` under `results_dir` and write every figure into `out_dir`.
    Returns (written files, messages about skipped figures); messages are also printed
    unless `quiet`."""
    summary_path = Path(results_dir) / "summary.csv"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{summary_path}: not found (run the aggregate step first)")
    summary = read_csv(summary_path)
    out = Path(out_dir)
    files: list[Path] = []
    notes: list[str] = []
    if summary.empty:
        notes.append(f"{summary_path} has no rows: no figures written")
    for ds, preset, stem in (table_groups(summary) if not summary.empty else []):
        p = preset if stem != ds else None
        sub = summary[(summary["dataset"] == ds) & (summary["preset"] == preset)]
        figs = {"label_efficiency": label_efficiency_figure(sub, ds, p, default_sigma),
                "sigma": sigma_figure(sub, ds, p)}
        for kind, fig in figs.items():
            if fig is None:
                notes.append(f"{stem}: no data for the {kind} figure, skipped")
                continue
            files += save_figure(fig, out / f"{stem}_{kind}")
    if not quiet:
        for f in files:
            print(f"wrote {f}")
        for n in notes:
            print(f"note: {n}")
    return files, notes
