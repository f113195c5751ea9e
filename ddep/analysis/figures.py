"""Figures from the CSVs alone (so they match the tables), per dataset (and model): ``{stem}_label_efficiency``
(grouped bars, 95% CI), ``{stem}_noise`` where ablated (mIoU vs sigma), ``{stem}_claims`` (forest plot by verdict,
hollow when fragile); ``noise``: every ablated dataset."""

import io
import math
import os
import textwrap
from collections.abc import Iterable
from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure  # no pyplot: no global state, no GUI, no figure leaks
from matplotlib.lines import Line2D

from . import COMPARISONS, csv_path, figure_paths
from .aggregate import read_csv
from .claims import CONTRADICTED, HOLDS, NOT_SHOWN, SIGMA_CLAIM_ID, TOO_FEW, verdict_text
from .common import (ARM_COLOURS, NoiseSetting, denoised, arm_display, atomic_write_bytes, describe_setting,
                     fraction_column_label, in_paper_order, parse_sigma, rows_of, seed_count_text, setting_differences)
from .tables import ablated_rows, fraction_columns, label_efficiency, table_groups

DPI = 150
# Fixed fonts and sizes (DejaVu Sans ships with matplotlib) on seaborn's whitegrid style, so figures look the same
# everywhere; TrueType in the PDF keeps its text searchable.
STYLE: dict = {**sns.axes_style("whitegrid"), "font.family": "DejaVu Sans", "font.size": 10, "axes.titlesize": 11,
               "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9,
               "figure.titlesize": 12, "pdf.fonttype": 42}
# The colour-blind palette's colours that the paper's four arms (ARM_COLOURS) and the greys do not use.
OWN_ARM_COLOURS = [sns.color_palette("colorblind", 10).as_hex()[i] for i in (3, 4, 5, 9, 8, 6)]
FORMULATION_STYLES = {"unscaled": "-", "scaled": "--"}
# Marker per (target, conditioning): the paper's setting is a circle.
VARIANT_MARKERS = {("eps", "off"): "o", ("x", "off"): "s", ("eps", "on"): "^", ("x", "on"): "D"}
# Verdict colours (Okabe-Ito): green holds, vermillion contradicted, greys not shown (light: no interval).
VERDICT_COLOURS = {HOLDS: "#009E73", CONTRADICTED: "#D55E00", NOT_SHOWN: "#666666", TOO_FEW: "#AAAAAA"}
HOLLOW = {"marker": "o", "markerfacecolor": "white", "linestyle": "none"}


def arm_colours(arms: Iterable[str]) -> dict[str, str]:
    """Each arm's colour in a figure: the paper's four keep theirs in every figure; the others, in name order (so
    every figure of one sweep agrees), take the colours none of the four uses, distinct up to six."""
    arms = set(arms)
    own = sorted(arms - set(ARM_COLOURS))
    return {**{a: ARM_COLOURS[a] for a in arms & set(ARM_COLOURS)},
            **{a: OWN_ARM_COLOURS[i % len(OWN_ARM_COLOURS)] for i, a in enumerate(own)}}


def _where(dataset: str, model: str | None) -> str:
    return dataset + (f" [{model}]" if model else "")


def _title(fig: Figure, title: str) -> str:
    """`title` with σ for sigma, wrapped to the figure width (about 11 characters per inch)."""
    return textwrap.fill(title.replace("sigma", "σ"), width=max(30, int(fig.get_figwidth() * 11)))


def save_figure(fig: Figure, paths: list[str]) -> list[Path]:
    """Save `fig` to each path in the format of its suffix (PNG at dpi 150, PDF), atomically."""
    written = []
    for path in map(Path, paths):
        buf = io.BytesIO()
        with matplotlib.rc_context(STYLE):  # no timestamp in a PDF: a rerun gives the same bytes
            fig.savefig(buf, format=path.suffix[1:], dpi=DPI,
                        metadata={"CreationDate": None} if path.suffix == ".pdf" else {})
        written.append(atomic_write_bytes(path, buf.getvalue()))
    return written


def label_efficiency_figure(summary: pd.DataFrame, dataset: str, model: str | None = None,
                            default: NoiseSetting | None = None) -> Figure | None:
    """Grouped bar chart of mIoU vs label fraction for one dataset; None when it has no data."""
    wide = label_efficiency(summary, dataset, model, default)
    if wide.empty:
        return None
    means, cis = wide["mIoU_mean"].astype(float), wide["mIoU_ci95"].astype(float)
    arm_of = {arm_display(a): a for a in summary["arm"].unique()}
    colours = arm_colours(arm_of.get(row, row) for row in wide.index)
    with matplotlib.rc_context(STYLE):  # width grows with the number of bars so labels never collide
        fig = Figure(figsize=(max(6.0, 1.2 + means.shape[1] * (0.35 * len(means) + 0.5)), 4.2), layout="constrained")
        ax = fig.add_subplot()
        # pandas groups the bars; a single seed's NaN CI draws no error bar
        means.T.plot.bar(ax=ax, yerr=cis.T, width=0.8, rot=0, edgecolor="black", linewidth=0.5, capsize=3, legend=False,
                         color=[colours[arm_of.get(row, row)] for row in wide.index],
                         error_kw={"ecolor": "black", "elinewidth": 1.0})
        top = np.nan_to_num((means + cis.fillna(0)).max().max())
        ax.set(xlabel="labelled fraction (images)", ylabel="mIoU (%)",
               ylim=(0, min(100.0, top * 1.12) if top > 0 else 1.0))
        ax.grid(axis="x", visible=False)
        sig = "" if wide.attrs["default"] is None else f", {describe_setting(wide.attrs['default'])}"
        ax.set_title(_title(fig, f"{_where(dataset, model)}: label efficiency "
                                 f"({seed_count_text(wide['n'].stack(), noun=True)}{sig})"))
        fig.legend(loc="outside lower center", frameon=False, ncols=min(len(means), 4))  # never over a bar
    return fig


def _noise_panels(summary: pd.DataFrame, dataset: str, model: str | None, prefix: str = "") -> list:
    """(title, ablated DeP/DDeP cells, random init and 21K cells) per ablated fraction."""
    mine = rows_of(summary, dataset, model)
    df = ablated_rows(mine).dropna(subset=["mIoU_mean"])
    refs = mine[~denoised(mine) & mine["mIoU_mean"].notna()]
    return [(f"{prefix}label fraction {label}", df[df["label_fraction"] == lf], refs[refs["label_fraction"] == lf])
            for lf, label in fraction_columns(df)]


def noise_figure(summary: pd.DataFrame, dataset: str, model: str | None = None) -> Figure | None:
    """mIoU vs sigma (log x) for the ablated fractions of one dataset; None without ablations."""
    panels = _noise_panels(summary, dataset, model)
    return _sigma_panels(panels, _where(dataset, model)) if panels else None


def noise_overview_figure(summary: pd.DataFrame) -> Figure | None:
    """The paper's noise figure: a panel per ablated dataset, fraction (and model); None for fewer than two datasets."""
    panels = [p for ds, model, stem in table_groups(summary) for p in _noise_panels(summary, ds, model, f"{stem}, ")]
    if len({cells["dataset"].iloc[0] for _, cells, _ in panels}) < 2:
        return None
    return _sigma_panels(panels, "noise ablations", sharey=False)  # datasets differ in mIoU range


def _sigma_panels(panels: list[tuple[str, pd.DataFrame, pd.DataFrame]], where: str, sharey: bool = True) -> Figure:
    """One axis of mIoU vs sigma (log) per (title, ablated cells, reference cells): colour = arm, line = formulation,
    marker = target/conditioning, U(a, b) hollow with a bar over [a, b], random init and 21K as lines with CI bands."""
    df = pd.concat([cells for _, cells, _ in panels])
    # x: a fixed sigma, or the middle of an interval (its bounds drawn as a horizontal bar; a lower bound of 0 is
    # clipped to the axis on the log scale)
    bounds = df["sigma"].map(lambda s: parse_sigma(s)[1])
    df = df.assign(interval=df["sigma"].map(lambda s: parse_sigma(s)[0] == "interval"),
                   x=bounds.map(lambda v: sum(v) / len(v)), lo=bounds.map(min), hi=bounds.map(max))
    variants, ncols = ["arm", "formulation", "target", "noise_conditioning"], min(len(panels), 3)
    nrows, handles = math.ceil(len(panels) / ncols), {}
    colours = arm_colours([*df["arm"], *(a for _, _, refs in panels for a in refs["arm"])])
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(max(7.5, 4.2 * ncols + 2.8), 3.4 * nrows + 0.8), layout="constrained")
        axes = fig.subplots(nrows, ncols, sharey=sharey, squeeze=False).ravel()
        for ax, (title, cells, refs) in zip(axes, panels):
            sub = in_paper_order(df.loc[cells.index], variants, variants=True)
            groups = list(sub.groupby(variants, sort=False))
            for k, ((arm, form, target, cond), cur) in enumerate(groups):
                style = dict(color=colours[arm], linestyle=FORMULATION_STYLES.get(form, ":"),
                             marker=VARIANT_MARKERS.get((target, cond), "v"))
                name = (arm_display(arm) + setting_differences(form, target, cond)).replace("sigma", "σ")
                handles.setdefault(name, Line2D([], [], linewidth=1.6, markersize=6, **style))
                dodge = 1.05 ** (k - (len(groups) - 1) / 2)  # keeps error bars apart on log x
                fixed = cur[~cur["interval"]].sort_values("x")
                ax.errorbar(fixed["x"] * dodge, fixed["mIoU_mean"], yerr=fixed["mIoU_ci95"].fillna(0),
                            linewidth=1.6, markersize=6, capsize=3, **style)
                for r in cur[cur["interval"]].itertuples():
                    ax.errorbar([r.x * dodge], [r.mIoU_mean], xerr=[[r.x * dodge - r.lo], [r.hi - r.x * dodge]],
                                yerr=[np.nan_to_num(r.mIoU_ci95)], color=style["color"], markersize=7,
                                elinewidth=1.0, capsize=3, **{**HOLLOW, "marker": style["marker"]})
            for r in refs.itertuples():  # random init and 21K: a line and its CI band
                colour, ci = colours[r.arm], np.nan_to_num(r.mIoU_ci95)
                ax.axhline(r.mIoU_mean, color=colour, linewidth=1.2, linestyle="-.")
                ax.axhspan(r.mIoU_mean - ci, r.mIoU_mean + ci, color=colour, alpha=0.12, linewidth=0)
                handles.setdefault(f"{arm_display(r.arm)} (no denoising)",
                                   Line2D([], [], color=colour, linewidth=1.2, linestyle="-."))
            ticks = sorted(set(sub["x"]))
            ax.set(xscale="log", title=title, xlabel="pretraining noise σ")
            ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xlim(min(ticks) / 1.6, max(sub["hi"].max(), max(ticks)) * 1.3)
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        for ax in axes if not sharey else axes[::ncols]:
            ax.set_ylabel("mIoU (%)")
        if df["interval"].any():
            handles["σ ~ U(a, b) (bar: [a, b])"] = Line2D([], [], color="black", **HOLLOW)
        fig.suptitle(_title(fig, f"{where}: mIoU vs pretraining noise "
                                 f"({seed_count_text(df['n'], noun=True)}, error bars: 95% CI)"))
        fig.legend(list(handles.values()), list(handles.keys()), loc="outside right center", frameon=True)
    return fig


def claims_figure_rows(claims: pd.DataFrame, dataset: str, model: str | None = None) -> pd.DataFrame:
    """One dataset's (and model's) claims as drawn, in the table's order: label ("DDeP > 21K · 10 (10)", plus the
    comparison where the claim does not name it: the sigma claim's arm and interval), CI, verdict, fragile."""
    df = rows_of(claims, dataset, model)
    named = ~df.duplicated(["claim_id", "label_fraction"], keep=False) & (df["claim_id"] != SIGMA_CLAIM_ID)
    label = [(f"{c} · {fraction_column_label(lf, n)}" + ("" if ok else f"\n{comp}")).replace("sigma", "σ")
             for c, lf, n, comp, ok in zip(df["claim"], df["label_fraction"], df["n_labelled"], df["comparison"],
                                           named)]
    return df.assign(label=label).astype({"mean_diff": float, "ci_low": float, "ci_high": float, "n_pairs": int,
                                          "fragile": bool})[
        ["label", "mean_diff", "ci_low", "ci_high", "n_pairs", "verdict", "fragile"]].reset_index(drop=True)


def claims_figure(claims: pd.DataFrame, dataset: str, model: str | None = None,
                  what: str = "claims of the paper") -> Figure:
    """Forest plot of one dataset's claims (or comparisons: `what`), the verdict on the right; without claims, a
    figure that says so."""
    rows = claims_figure_rows(claims, dataset, model)
    title = f"{_where(dataset, model)}: {what}"
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(9.0, 1.9 + 0.42 * max(len(rows), 2)), layout="constrained")
        ax = fig.add_subplot()
        if rows.empty:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "No claim has paired runs.", ha="center", va="center", transform=ax.transAxes)
            fig.suptitle(_title(fig, title))
            return fig
        ax.axvline(0.0, color="black", linewidth=1.0, zorder=1)
        colours = rows["verdict"].map(lambda v: VERDICT_COLOURS.get(v, "black"))
        for y, (r, colour) in enumerate(zip(rows.itertuples(), colours)):  # n < 2: the mean alone, no CI
            ax.errorbar([r.mean_diff], [y], xerr=[[r.mean_diff - r.ci_low], [r.ci_high - r.mean_diff]]
                        if math.isfinite(r.ci_low) and math.isfinite(r.ci_high) else None, fmt="o", color=colour,
                        markersize=8, markeredgewidth=1.6, markerfacecolor="white" if r.fragile else colour,
                        elinewidth=1.8, capsize=4, zorder=3)
        ax.set_yticks(range(len(rows)), rows["label"])
        right = ax.secondary_yaxis("right")  # the verdicts, in their colour
        right.set_yticks(range(len(rows)), [verdict_text(v, f) for v, f in zip(rows["verdict"], rows["fragile"])])
        right.tick_params(length=0)
        for tick, colour in zip(right.get_yticklabels(), colours):
            tick.set_color(colour)
        ends = np.concatenate([[0.0], rows["mean_diff"], rows["ci_low"], rows["ci_high"]])
        lo, hi = np.nanmin(ends), np.nanmax(ends)
        pad = 0.08 * (hi - lo) if hi > lo else 1.0
        ax.set(ylim=(len(rows) - 0.5, -0.5), xlim=(lo - pad, hi + pad),  # first claim on top, 0 always in view
               xlabel="paired mIoU difference (percentage points): mean and 95% CI")
        ax.grid(axis="y", visible=False)
        handles = [Line2D([], [], color=colour, marker="o", linestyle="none", markersize=7,
                          label=v + (": no CI" if v == TOO_FEW else ""))
                   for v, colour in VERDICT_COLOURS.items() if v in set(rows["verdict"])]
        if rows["fragile"].any():
            handles.append(Line2D([], [], color="black", markersize=7, markeredgewidth=1.6, **HOLLOW,
                                  label="fragile: a CI bound within half the half-width of 0"))
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), frameon=True)
        fig.suptitle(_title(fig, f"{title}, paired mIoU differences over "
                                 f"{seed_count_text(rows['n_pairs'], noun=True)}"))
    return fig


def write_figures(results_dir: str | os.PathLike, out_dir: str | os.PathLike, default: NoiseSetting | None = None,
                  quiet: bool = False) -> tuple[list[Path], list[str]]:
    """Draw every figure of `results_dir`'s summary and claims in `out_dir`: (files, notes), printed unless `quiet`."""
    paths = [Path(csv_path(results_dir, name)) for name in ("summary", "claims")]
    if missing := [p for p in paths if not p.is_file()]:
        raise FileNotFoundError(f"{missing[0]}: not found (run the aggregate step first)")
    summary, claims = map(read_csv, paths)
    comparisons_csv = Path(csv_path(results_dir, COMPARISONS))  # where the sweep has arms of its own
    comparisons = read_csv(comparisons_csv) if comparisons_csv.is_file() else None
    if "fragile" not in claims.columns:
        raise ValueError(f"{paths[1]} has no 'fragile' column: it was written by an older ddep; run the "
                         f"aggregate step again")
    files: list[Path] = []
    notes = [f"{paths[0]} has no rows: no figures written"] if summary.empty else []
    for ds, model, stem in table_groups(summary):
        p, sub = model if stem != ds else None, rows_of(summary, ds, model)
        figures = {"label_efficiency": label_efficiency_figure(sub, ds, p, default),
                   "noise": noise_figure(sub, ds, p),  # None: no noise ablations, no figure
                   "claims": claims_figure(rows_of(claims, ds, model), ds, p)}
        if comparisons is not None:
            figures[COMPARISONS] = claims_figure(rows_of(comparisons, ds, model), ds, p, "your arms against the presets")
        if figures["label_efficiency"] is None:
            notes.append(f"{stem}: no data for the label_efficiency figure, skipped")
        files += [f for kind, fig in figures.items() if fig is not None
                  for f in save_figure(fig, figure_paths(out_dir, f"{stem}_{kind}"))]
    fig = noise_overview_figure(summary)  # None unless several datasets are ablated
    files += save_figure(fig, figure_paths(out_dir, "noise")) if fig is not None else []
    for line in [] if quiet else [*(f"wrote {f}" for f in files), *(f"note: {n}" for n in notes)]:
        print(line)
    return files, notes
