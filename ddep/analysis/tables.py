"""Result tables (Markdown via tabulate, LaTeX via pandas' Styler/booktabs) from summary.csv and paired.csv: label
efficiency (arms x label fractions, ``mean ± 95% CI`` of mIoU, best per column in bold) and, where run, noise
ablations (each DeP/DDeP setting's mIoU and its paired difference from the default)."""

import math
import os
from pathlib import Path

import pandas as pd

from . import table_paths
from .common import (NOISE_AXES, denoised, NoiseSetting, arm_display, at_default, atomic_write_text,
                     choose_default_setting, describe_setting, fraction_column_label, in_paper_order, rows_of,
                     seed_count_text, setting_mask)
from ddep.sweep import ABLATION_CELL, ablated_keys, result_stem, run_name

DASH = "–"
# Styler escapes cells and headers; the caption is passed through as is, so it is escaped here.
_CAPTION_ESCAPES = str.maketrans({"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                                  "^": r"\textasciicircum{}"})


def table_groups(summary: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(dataset, model, file stem) per table/figure; ``{dataset}_{model}`` where a dataset has several models."""
    models = summary.astype({"model": str}).groupby(summary["dataset"].astype(str))["model"].unique()
    return [(ds, m, result_stem(ds, m, len(ms) > 1)) for ds, ms in models.sort_index().items() for m in sorted(ms)]


def fraction_columns(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(label_fraction, column label "1/30 (10)") in numeric order."""
    pairs = in_paper_order(df[["label_fraction", "n_labelled"]].drop_duplicates("label_fraction"))
    return [(str(lf), fraction_column_label(lf, n)) for lf, n in pairs.itertuples(index=False)]


def label_efficiency(summary: pd.DataFrame, dataset: str, model: str | None = None,
                     default: NoiseSetting | None = None) -> pd.DataFrame:
    """Arms x (mIoU_mean | mIoU_ci95 | n, fraction label); DeP/DDeP at `default` (None: the commonest), in .attrs."""
    df = rows_of(summary, dataset, model)
    default = default or choose_default_setting(df)
    df = in_paper_order(at_default(df, default), ["arm"])
    cols = fraction_columns(df)
    wide = (df.assign(_row=df["arm"].map(arm_display), _col=df["label_fraction"].map(dict(cols)))
            .set_index(["_row", "_col"])[["mIoU_mean", "mIoU_ci95", "n"]].unstack("_col"))
    wide = wide.reindex(index=df["arm"].map(arm_display).unique()).reindex(columns=[c for _, c in cols], level="_col")
    wide.index.name, wide.columns.names = None, [None, None]
    wide.attrs["default"] = default
    return wide


def _cell_text(mean: float, ci: float, pm: str = " ± ") -> str:
    return DASH if not math.isfinite(mean) else f"{mean:.1f}" + (f"{pm}{ci:.1f}" if math.isfinite(ci) else "")


def _cells(wide: pd.DataFrame, pm: str, bold: str) -> pd.DataFrame:
    """Cell texts; the best mean of each column (compared as displayed) in `bold` ("**{}**")."""
    mean, ci = wide["mIoU_mean"], wide["mIoU_ci95"]
    best = mean.round(1).eq(mean.round(1).max())
    return pd.DataFrame({c: [(bold if b else "{}").format(_cell_text(m, e, pm)) for m, e, b in
                             zip(mean[c], ci[c], best[c])] for c in mean.columns}, index=mean.index)


def _render(title: str, md: str, caption: str, styler, label: str, column_format: str) -> tuple[str, str]:
    """(Markdown, LaTeX): the Markdown table under its bold title, the caption below; a booktabs table."""
    tex_caption = caption.translate(_CAPTION_ESCAPES).replace("±", r"$\pm$").replace("sigma", r"$\sigma$")
    tex = styler.format_index(escape="latex", axis=0).format_index(escape="latex", axis=1).to_latex(
        hrules=True, position="t", position_float="centering", label=label, caption=tex_caption.replace("–", "--"),
        column_format=column_format)
    return "\n".join([f"**{title}**", "", md, "", caption, ""]), tex


def render_label_efficiency(wide: pd.DataFrame, where: str, label: str) -> tuple[str, str]:
    """(Markdown, LaTeX) of a label-efficiency table."""
    caption = (f"{where}. mIoU (%) as mean ± 95% CI half-width (t distribution) over seeds "
               f"({seed_count_text(wide['n'].stack())}); columns: labelled fraction (images); "
               f"{describe_setting(wide.attrs['default'])}. Best per column in bold.")
    md = _cells(wide, " ± ", "**{}**").to_markdown(colalign=["left"] + ["center"] * wide["n"].shape[1])
    tex = _cells(wide, r" $\pm$ ", r"\textbf{{{}}}")
    return _render(f"{where}: label efficiency (mIoU %)", md, caption, tex.style, label, "l" + "c" * tex.shape[1])


def ablated_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """DeP/DDeP rows of the (arm, fraction) cells run at more than one noise setting (as the workflow plans them)."""
    den = summary[denoised(summary)]
    ablated = ablated_keys({**r, "setting": NoiseSetting.from_config(r)} for r in den.to_dict("records"))
    return den.loc[[tuple(k) in ablated for k in den[list(ABLATION_CELL)].itertuples(index=False)]]


def _diff_text(r) -> str:  # a setting's paired difference from the default (none: no matched seeds)
    if not math.isfinite(r.mean_diff):
        return DASH
    return f"{r.mean_diff:+.2f} " + (f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]" if math.isfinite(r.ci95) else "(n=1)")


def noise_table(summary: pd.DataFrame, paired: pd.DataFrame, default: NoiseSetting | None) -> pd.DataFrame:
    """A row per DeP/DDeP setting of each ablated fraction: its mIoU and paired difference from the default."""
    df = in_paper_order(ablated_rows(summary), ["arm", "label_fraction", "formulation", "target",
                                                "noise_conditioning", "sigma"], variants=True)
    if df.empty:
        return pd.DataFrame()
    # each setting's paired difference from the same arm at the default, by a left merge
    keys = ["arm", "label_fraction", "model", *NOISE_AXES]
    base = paired.iloc[:0] if default is None else \
        paired[paired["baseline"] == paired["arm"].map(lambda a: run_name(a, default))]
    df = df.merge(base[[*keys, "mean_diff", "ci95", "ci_low", "ci_high"]].drop_duplicates(keys), on=keys, how="left")
    return pd.DataFrame([{
        "arm": arm_display(r.arm), "images": fraction_column_label(r.label_fraction, r.n_labelled),
        "sigma": r.sigma, "formulation": r.formulation, "target": r.target, "conditioning": r.noise_conditioning,
        "mIoU": _cell_text(r.mIoU_mean, r.mIoU_ci95), "n": int(r.n),
        "vs default [95% CI]": "default" if NoiseSetting.from_config(r._asdict()) == default else _diff_text(r)}
        for r in df.itertuples(index=False)])


def render_noise_table(table: pd.DataFrame, where: str, default: NoiseSetting | None, label: str) -> tuple[str, str]:
    """(Markdown, LaTeX) of a noise-ablation table."""
    caption = (f"{where}. DeP/DDeP pretrained at each noise setting, then fine-tuned: mIoU (%) as mean ± 95% CI "
               f"half-width over seeds, and the paired difference from the same arm at the default setting "
               f"({describe_setting(default)}) over matched seeds, with its 95% t CI. Sigma U(a,b): drawn uniformly "
               f"per image; scaled: sqrt(g)x + sqrt(1-g)eps, g = 1/(1+sigma^2).")
    md = table.to_markdown(index=False, colalign=["left"] * 6 + ["center"] * 3)
    styler = table.style.hide(axis="index").format(lambda v: str(v).replace("±", r"$\pm$"), escape="latex")
    return _render(f"{where}: noise ablations (mIoU %)", md, caption, styler, label, "l" * 6 + "c" * 3)


def write_tables(summary: pd.DataFrame, paired: pd.DataFrame, results_dir: str | os.PathLike,
                 default: NoiseSetting | None = None) -> tuple[list[Path], list[str]]:
    """Write ``tables/{stem}_label_efficiency.{md,tex}`` per dataset (and model), and ``{stem}_noise.{md,tex}`` where
    a noise ablation has runs: (files, notes)."""
    if summary.empty:
        return [], ["no results: no tables written"]
    files, notes = [], []
    for ds, model, stem in table_groups(summary):
        sub, where = rows_of(summary, ds, model), ds + (f", model {model}" if stem != ds else "")
        if default is not None and denoised(sub).any() and not setting_mask(sub, default).any():
            notes.append(f"{stem}: no DeP/DDeP results at the default setting {default.slug}")
        texts = {"label_efficiency": render_label_efficiency(label_efficiency(sub, ds, model, default), where,
                                                             f"tab:{stem}_label_efficiency")}
        if not (table := noise_table(sub, rows_of(paired, ds, model), default)).empty:
            texts["noise"] = render_noise_table(table, where, default, f"tab:{stem}_noise")
        files += [atomic_write_text(path, text) for kind, pair in texts.items()
                  for path, text in zip(table_paths(results_dir, f"{stem}_{kind}"), pair)]
    return files, notes
