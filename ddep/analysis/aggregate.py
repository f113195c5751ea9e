"""Per-run JSON files (:mod:`ddep.run_file`) -> tidy CSVs (runs, per-cell summary, paired differences); the
pretraining jobs' table."""

import math
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .common import (CELL_KEYS, CONFIDENCE, NO_SETTING, NOISE_AXES, PAIR_KEYS, RUN_KEYS, STRING_COLUMNS,
                     NoiseSetting, ci_halfwidth, denoised_arms, diff_stats, in_paper_order, seeds_text, setting_mask, sigma_label)
from ddep.run_file import LABELS, METRICS, check_run, read_json
from ddep.sweep import conditioning_label, model_of_run, run_name

PROVENANCE: tuple[str, ...] = ("iterations", "wall_time_s", "config_hash", "git_commit")
# (denoising arm, baseline arm) -> label: the paper's two headline comparisons.
COMPARISONS: dict[tuple[str, str], str] = {("ddep", "21k"): "DDeP - 21K", ("dep", "none"): "DeP - none"}


def _parse_run(path: Path) -> dict:
    """Read and validate one per-run JSON, returning a flat row dict."""
    data = read_json(path)
    if isinstance(data, dict) and "preset" in data:  # written before the models axis: a TransUNet preset
        data.setdefault("model", model_of_run(data))
    check_run(data, path)
    row = {k: str(data[k]).strip() for k in LABELS}
    row["arm"] = row["arm"].lower()  # "21K" and "21k" are the same arm
    row["sigma"] = sigma_label(row["sigma"])
    row["noise_conditioning"] = (conditioning_label(data.get("noise_conditioning", False))
                                 if row["sigma"] != NO_SETTING else NO_SETTING)
    row |= {"n_labelled": int(data["n_labelled"]), "seed": int(data["seed"]), **{k: float(data[k]) for k in METRICS}}
    row |= {f"iou_{cls}": math.nan if v is None else float(v) for cls, v in (data.get("per_class_iou") or {}).items()}
    row |= {k: data.get(k) for k in PROVENANCE}
    # Other scalar fields (e.g. split_file) are kept as provenance columns.
    known = {*RUN_KEYS, *METRICS, *PROVENANCE, "per_class_iou", "versions", "json_path"}
    row |= {k: v for k, v in data.items() if k not in known and (v is None or isinstance(v, (str, int, float, bool)))}
    return {**row, **{f"version_{pkg}": str(ver) for pkg, ver in (data.get("versions") or {}).items()},
            "json_path": str(path)}


def load_runs(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Per-run JSON files -> one row per run, in paper order. Raises RunFileError for a malformed file and
    ValueError when two files describe the same run (same identity and seed)."""
    df = pd.DataFrame([_parse_run(Path(p)) for p in sorted({str(p) for p in paths})])
    base = [*RUN_KEYS, *METRICS]
    if df.empty:
        return pd.DataFrame(columns=[*base, *PROVENANCE, "json_path"])
    groups = df[df.duplicated(RUN_KEYS, keep=False)].groupby(RUN_KEYS, sort=False)["json_path"].apply(list).tolist()
    if groups:
        raise ValueError("duplicate runs (same identity and seed) in: "
                         + "; ".join(" and ".join(g) for g in groups[:5]))
    iou, ver = (sorted(c for c in df.columns if c.startswith(prefix)) for prefix in ("iou_", "version_"))
    extra = [c for c in df.columns if c not in {*base, *iou, *ver, *PROVENANCE, "json_path"}]
    return in_paper_order(df[[*base, *iou, *PROVENANCE, *extra, *ver, "json_path"]]).reset_index(drop=True)


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV written by this package, keeping label columns as strings ("-", "1/30")."""
    return pd.read_csv(path, dtype=dict.fromkeys(STRING_COLUMNS, str), keep_default_na=False, na_values=[""])


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell (CELL_KEYS): n seeds, mIoU mean, std, t CI (NaN for one seed), aAcc and mAcc means, the seeds."""
    cols = [*CELL_KEYS, "n", "mIoU_mean", "mIoU_std", "mIoU_ci95", "mIoU_ci_low", "mIoU_ci_high", "aAcc_mean",
            "mAcc_mean", "seeds"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    out = runs.groupby(CELL_KEYS, sort=False, dropna=False).agg(
        n=("mIoU", "count"), mIoU_mean=("mIoU", "mean"), mIoU_std=("mIoU", "std"),
        aAcc_mean=("aAcc", "mean"), mAcc_mean=("mAcc", "mean"), seeds=("seed", seeds_text)).reset_index()
    out["mIoU_ci95"] = [ci_halfwidth(sd, n, CONFIDENCE) for sd, n in zip(out["mIoU_std"], out["n"])]
    out = out.assign(mIoU_ci_low=out["mIoU_mean"] - out["mIoU_ci95"], mIoU_ci_high=out["mIoU_mean"] + out["mIoU_ci95"])
    return in_paper_order(out[cols]).reset_index(drop=True)


def paired_differences(runs: pd.DataFrame, default: NoiseSetting | None = None) -> pd.DataFrame:
    """Paired mIoU differences over seeds (matched on PAIR_KEYS + seed): DDeP - 21K and DeP - none at every noise
    setting, and each other DeP/DDeP setting minus the same arm at `default`, where seeds match."""
    cols = [*PAIR_KEYS, "comparison", "arm", "baseline", *NOISE_AXES, "n_pairs", "mean_diff", "std_diff", "ci95",
            "ci_low", "ci_high", "n_positive", "seeds"]
    # (label, baseline, treated runs, control runs)
    pairs = [(label, base, runs[runs["arm"] == arm], runs[runs["arm"] == base])
             for (arm, base), label in COMPARISONS.items()]
    if default is not None:
        at = setting_mask(runs, default)
        for arm in denoised_arms(runs):
            base, ctrl = run_name(arm, default), runs[(runs["arm"] == arm) & at]
            pairs += [(f"{run_name(arm, NoiseSetting(*setting))} - {base}", base, treat, ctrl)
                      for setting, treat in runs[(runs["arm"] == arm) & ~at].groupby(list(NOISE_AXES), sort=False)]
    keys, out = [*PAIR_KEYS, "arm", *NOISE_AXES], []
    for label, base, treat, ctrl in pairs:
        merged = treat.merge(ctrl[[*PAIR_KEYS, "seed", "mIoU"]], on=[*PAIR_KEYS, "seed"], suffixes=("", "_base"))
        out += [{**dict(zip(keys, key)), "comparison": label, "baseline": base,
                 **diff_stats(g["mIoU"] - g["mIoU_base"], g["seed"])}
                for key, g in merged.groupby(keys, sort=False, dropna=False)]
    return in_paper_order(pd.DataFrame(out, columns=cols)).reset_index(drop=True)


# The pretraining JSONs' columns (``ddep pretrain-supervised`` / ``pretrain-denoise``), in order.
PRETRAINING_COLUMNS: list[str] = ["dataset", "model", "stage", "arm", "sigma", "images", "iterations", "wall_time_s",
                                  "final_loss", "heldout_loss", "heldout_zero_loss", "heldout_images", "heldout",
                                  "accuracy", "chance", "source_classes"]


def pretraining_table(json_paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """One row per pretraining job: what it learnt from, how long it took, how well."""
    rows = []
    for path in json_paths:
        data = read_json(path, "pretraining JSON")
        supervised = data.get("stage") == "supervised"
        rows.append({**{k: data.get(k) for k in PRETRAINING_COLUMNS},
                     # resources/weights/{dataset}/{model}/x.json (before models: {dataset}/x.json)
                     "dataset": data.get("dataset") or Path(path).parents["model" in data].name,
                     "model": model_of_run(data), "arm": "21k" if supervised else data.get("arm"),
                     "images": data.get("source") if supervised else data.get("unlabelled")})
    return pd.DataFrame(rows, columns=PRETRAINING_COLUMNS)


# A pretraining that did not learn: what the arms fine-tuned from it start from is then no learnt encoder (or
# decoder). A supervised stand-in below this held-out top-1 (the criterion of config/models.yaml's stand-ins; the
# default run's is sized to 0.6) ...
LEARNT_TOP1 = 0.5
# ... or a denoiser whose held-out loss is not 5% below predicting zero noise.
LEARNT_LOSS_RATIO = 0.95


def _did_not_learn(data: dict) -> str | None:
    """Why a pretraining JSON's weights did not learn, or None."""
    if data.get("stage") == "supervised":
        top1 = data.get("accuracy", 1.0)
        return (f"a supervised stand-in that did not learn (held-out top-1 {top1:.3f} < {LEARNT_TOP1})"
                if top1 < LEARNT_TOP1 else None)
    loss, zero = data.get("heldout_loss"), data.get("heldout_zero_loss")
    if pd.isna(loss) or pd.isna(zero) or loss < LEARNT_LOSS_RATIO * zero:  # none recorded, or it learnt
        return None
    return (f"a {data.get('arm', 'denoising')} pretraining that did not learn (held-out loss {loss:.3f}, "
            f"zero prediction {zero:.3f})")


def unlearnt_starts(runs: pd.DataFrame, json_paths: Iterable[str | os.PathLike]) -> dict[tuple[str, str], str]:
    """(dataset, model) -> one line naming the arms whose fine-tunes start from a pretraining that did not learn
    (:func:`_did_not_learn`): its weights directly, or a decoder pretrained on top of such an encoder (a
    denoising JSON's ``encoder_weights``)."""
    why, encoder_of = {}, {}
    for path in json_paths:
        data = read_json(path, "pretraining JSON")
        supervised = data.get("stage") == "supervised"  # the weights lie beside the JSON
        weights = os.path.normpath(Path(path).with_suffix(".safetensors" if supervised else ".pth"))
        if reason := _did_not_learn(data):
            why[weights] = reason
        if data.get("encoder_weights"):
            encoder_of[weights] = os.path.normpath(data["encoder_weights"])
    marks: dict[tuple[str, str], str] = {}
    if not why or "pretrained" not in runs:
        return marks
    for (ds, model), g in runs.groupby(["dataset", "model"], sort=False):
        reasons: dict[str, list[str]] = {}
        for arm, start in g[["arm", "pretrained"]].dropna().drop_duplicates().itertuples(index=False):
            start = os.path.normpath(start)
            for weights in (start, encoder_of.get(start)):
                if weights in why and why[weights] not in reasons.get(arm, []):
                    reasons.setdefault(arm, []).append(why[weights])
        if reasons:
            marks[(ds, model)] = "; ".join(f"{arm} starts from {' and '.join(r)}" for arm, r in reasons.items()) + (
                ": those rows say nothing of a learnt start.")
    return marks


def pretraining_markdown(table: pd.DataFrame) -> str:
    """The supervised stand-in's held-out top-1 beside chance; the denoisers' final and held-out loss; each marked
    where it did not learn (:data:`LEARNT_TOP1`, :data:`LEARNT_LOSS_RATIO`)."""
    lines = ["**Pretraining jobs**", "", "| dataset | model | arm | stage | images | iterations | wall time (s) | "
             "result |", "|:---|:---|:---|:---|:---|---:|---:|:---|"]
    for r in table.itertuples():
        result = (f"held-out top-1 {r.accuracy:.3f} on {int(r.source_classes)} classes (chance {r.chance:.3f})"
                  if r.stage == "supervised" else f"final loss {r.final_loss:.3f} (sigma {r.sigma})"
                  + ("" if pd.isna(r.heldout_loss) else
                     f"; held-out {r.heldout_loss:.3f} on {int(r.heldout_images)} images (zero prediction "
                     f"{r.heldout_zero_loss:.3f})")) + ("; **did not learn**" if _did_not_learn(r._asdict()) else "")
        lines.append(f"| {r.dataset} | {r.model} | {r.arm} | {r.stage} | `{r.images}` | {r.iterations} | "
                     f"{r.wall_time_s:.0f} | {result} |")
    return "\n".join([*lines, "", "Wall time: the job's training and evaluation, one thread, as the workflow ran it "
                                  "(two jobs side by side); start-up not included."]) + "\n"
