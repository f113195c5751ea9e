"""The per-run JSON file, one per fine-tuning run: written by ``ddep finetune`` (:func:`ddep.train.jobs.finetune`),
read by ``ddep aggregate`` (:mod:`ddep.analysis.aggregate`); both check it against one contract, :data:`RUN_SCHEMA`.
For example {"dataset": "builtin", "model": "transunet_tiny", "label_fraction": "1/30", "n_labelled": 10,
"arm": "ddep", "sigma": "0.2", "formulation": "unscaled", "target": "eps", "noise_conditioning": false, "seed": 0,
"mIoU": 41.3, "aAcc": 80.1, "mAcc": 50.2, "per_class_iou": {"sky": 90.1}, "iterations": 300, "wall_time_s": 41.2,
"config_hash": "ab12cd34", "git_commit": "abc123", "versions": {"torch": "2.14.1"}}."""
import json
import os
from pathlib import Path

import jsonschema

from ddep.sweep import STRING_COLUMNS

METRICS: tuple[str, ...] = ("mIoU", "aAcc", "mAcc")
# Text (or a number: sigma 0.2), not blank. noise_conditioning may be absent (written before it was an axis): off.
LABELS: list[str] = [k for k in STRING_COLUMNS if k != "noise_conditioning"]
# mmseg reports percentages: a metric in [0, 1] is legal, > 100 is a bug (NaN passes).
RUN_SCHEMA: dict = {"type": "object", "required": [*LABELS, "n_labelled", "seed", *METRICS], "properties": {
    **dict.fromkeys(LABELS, {"type": ["string", "number"], "pattern": r"\S"}),
    "n_labelled": {"type": "integer"}, "seed": {"type": "integer"},
    **dict.fromkeys(METRICS, {"type": "number", "minimum": 0, "maximum": 100}),
    "per_class_iou": {"type": ["object", "null"], "additionalProperties": {"type": ["number", "null"]}},
    "versions": {"type": ["object", "null"]}}}
_VALIDATOR = jsonschema.Draft202012Validator(RUN_SCHEMA)


class RunFileError(ValueError):
    """A per-run JSON file is unreadable or violates the contract; the message names the file."""


def read_json(path: str | os.PathLike, what: str = "JSON file") -> object:
    """The parsed file; RunFileError naming `path` and `what` it should be when unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RunFileError(f"{path}: not a readable {what} ({exc})") from exc


def check_run(data: object, path: str | os.PathLike) -> None:
    """RunFileError naming `path` and every violation ("$.mIoU: 140.0 is greater than the maximum of 100")."""
    if errors := list(_VALIDATOR.iter_errors(data)):
        raise RunFileError(f"{path}: " + "; ".join(f"{e.json_path}: {e.message}" for e in errors))


# --- what every column of the CSVs under results/ (and of `ddep compare`'s) means -----------------------------------
# One line each, in one place: docs/outputs.md is generated from it (`ddep readme`), and tests/test_outputs.py fails
# when a CSV the code writes, or one committed under results/, has a column without a line here. A key ending in "*"
# is a family of columns (iou_<class>, version_<package>).
_IDENTITY: dict[str, str] = {
    "dataset": "the dataset's name in the config (`builtin`, `cityscapes`, ...)",
    "model": "the model's name: a TransUNet preset's model (`transunet_tiny`) or the config's `models:` name",
    "label_fraction": "the labelled fraction as the config writes it (`1/30`, `0.05`, or an image count such as `100`)",
    "n_labelled": "labelled training images that fraction selected (the split file's lines)",
    "arm": "the initialisation: `none` (random), `21k` (supervised encoder), `dep`, `ddep` (denoising-pretrained)",
    "sigma": "DeP/DDeP's noise level: a number (fixed) or `U(a,b)` (drawn per image); `-` for arms without denoising",
    "formulation": "`unscaled` (x + sigma eps) or `scaled` (variance-preserving); `-` for arms without denoising",
    "target": "what the denoiser predicts: `eps` (the noise) or `x` (the image); `-` for arms without denoising",
    "noise_conditioning": "decoder conditioned on sigma: `on` / `off`; `-` for arms without denoising",
}
_DIFFERENCE: dict[str, str] = {
    "comparison": "what minus what, e.g. `DDeP - Supervised (21K)`",
    "n_pairs": "seeds with both runs (paired: same split, same seed)",
    "mean_diff": "mean of the per-seed mIoU differences (percentage points)",
    "ci_low": "lower bound of the 95% t interval of the mean difference (NaN with fewer than two pairs)",
    "ci_high": "upper bound of that interval",
    "seeds": "the seeds paired, `;`-joined",
}
OUTPUT_COLUMNS: dict[str, dict[str, str]] = {
    "runs": {
        **_IDENTITY,
        "seed": "the run's seed: its split (with the fraction) and its training randomness",
        "mIoU": "mean intersection-over-union over the classes, %, on the val split (mmseg's IoUMetric)",
        "aAcc": "pixel accuracy over all labelled val pixels, % (mmseg's aAcc)",
        "mAcc": "per-class pixel accuracy averaged over the classes, % (mmseg's mAcc)",
        "iou_*": "IoU of one class, % (`iou_<class name>`); empty where the class is absent from the val labels",
        "iterations": "training iterations the fine-tune ran",
        "wall_time_s": "seconds of the job's training and evaluation (start-up not included)",
        "config_hash": "hash of the resolved mmseg config, paths relative to the checkout: equal hashes, equal job",
        "git_commit": "the commit of the code that ran the job (`unknown` outside a git checkout)",
        "model_config": "the model's config: a preset name, `mmseg::...py` or a .py file",
        "split_file": "the file listing the labelled images (mmseg's ann_file)",
        "pretrained": "the weights the fine-tune started from (a denoising checkpoint or supervised encoder); "
                      "empty for random init",
        "world_size": "processes (GPUs) the job trained on; the global batch is the per-GPU batch times this",
        "version_*": "version of one library the job ran with (`version_<package>`: torch, mmseg, ...)",
        "json_path": "the per-run JSON this row was read from",
    },
    "summary": {
        **_IDENTITY,
        "n": "runs (seeds) in the cell",
        "mIoU_mean": "mean mIoU over the cell's seeds, %",
        "mIoU_std": "sample standard deviation of mIoU over the seeds (NaN for one seed)",
        "mIoU_ci95": "half-width of the 95% t interval of the mean (t x std / sqrt(n))",
        "mIoU_ci_low": "mIoU_mean - mIoU_ci95",
        "mIoU_ci_high": "mIoU_mean + mIoU_ci95",
        "aAcc_mean": "mean pixel accuracy over the seeds, %",
        "mAcc_mean": "mean per-class accuracy over the seeds, %",
        "seeds": "the cell's seeds, `;`-joined",
    },
    "paired": {
        **_IDENTITY, **_DIFFERENCE,
        "arm": "the treated arm (DeP or DDeP)",
        "baseline": "the arm or setting subtracted: `21k`, `none`, or the same arm at the default setting "
                    "(`ddep_s0.2`)",
        "std_diff": "sample standard deviation of the per-seed differences",
        "ci95": "half-width of the 95% t interval of the mean difference",
        "n_positive": "seeds whose difference is above 0",
    },
    "claims": {
        **{k: v for k, v in _IDENTITY.items() if k not in ("arm", "noise_conditioning")}, **_DIFFERENCE,
        "claim_id": "the claim's stable id (`dep_gt_none`, `ddep_gt_21k`, ...; ddep/analysis/claims.py)",
        "claim": "the paper's claim in words, e.g. `DDeP > 21K`",
        "sigma": "DeP/DDeP's noise setting the claim is tested at (sigma claim: `default vs interval`)",
        "mde": "minimal detectable effect: the true difference this test would find with 80% power at the "
               "observed spread and n",
        "verdict": "`holds` (CI above 0), `contradicted` (below 0), `not shown` (contains 0), "
                   "`not shown (n < 2)`",
        "fragile": "True when the CI bound nearest 0 lies within half the CI's half-width of 0: a rerun on "
                   "another CPU may flip the verdict",
    },
    "pretrainings": {
        "dataset": "the target dataset the pretraining serves",
        "model": "the model pretrained",
        "stage": "`supervised` (the 21K stand-in, built-in data only) or `denoise` (DeP/DDeP)",
        "arm": "the arm whose weights these are (`21k` for the supervised stand-in)",
        "sigma": "the denoising noise level (empty for the supervised stage)",
        "images": "the folder of images it trained on",
        "iterations": "training iterations",
        "wall_time_s": "seconds of training (and evaluation), start-up not included",
        "final_loss": "denoising loss at the last iteration (empty for the supervised stage)",
        "heldout_loss": "denoising loss on images the denoiser did not train on, at its own sigma, noise from a "
                        "fixed stream (empty where the config names no `heldout` images)",
        "heldout_zero_loss": "the loss of predicting zero on the same corruptions: the reference of a denoiser "
                             "that learnt nothing (1 for the eps target)",
        "heldout_images": "images the held-out loss was measured on",
        "heldout": "the folder of those images (DeP: the development scenes; DDeP: held-out source images)",
        "accuracy": "supervised stand-in: held-out top-1 on the source classes (empty for denoising)",
        "chance": "supervised stand-in: top-1 of guessing, 1 / source_classes",
        "source_classes": "supervised stand-in: classes of the source set",
    },
    "tuning": {
        **{k: v for k, v in _IDENTITY.items() if k in ("dataset", "model", "label_fraction", "arm")},
        "lr": "the grid point's learning rate (a column per axis of `tuning.grid`)",
        "encoder_lr_mult": "the grid point's LR factor of the encoder (`backbone`)",
        "iters": "the grid point's fine-tune iterations, where the grid tunes them",
        "batch_size": "the grid point's batch size, where the grid tunes it",
        "point": "the grid point's name (its folder under resources/tuning/)",
        "seed": "the development seed: its labelled split and training randomness",
        "status": "`ok`, or `failed` (the job crashed or its loss is not finite): the rule leaves the point out",
        "mIoU": "mIoU on the development split, % (never the val split that results report)",
        "final_loss": "training loss at the last iteration",
        "eval_split": "the split evaluated on (`dev`)",
        "reason": "why a failed run failed",
        "git_commit": "the commit of the code that ran the job",
        "json_path": "the tuning run's JSON",
    },
    "compare_cells": {
        **_IDENTITY,
        "present": "`both`, `a only` or `b only`: which results folder has the cell",
        **{f"{c}_{side}": f"{what} in results folder {side.upper()}" for side in "ab" for c, what in (
            ("n", "seeds of the cell"), ("mIoU_mean", "mean mIoU, %"), ("mIoU_std", "standard deviation of mIoU"),
            ("mIoU_ci_low", "lower 95% CI bound of the mean"), ("mIoU_ci_high", "upper 95% CI bound of the mean"))},
        "diff": "mIoU_mean_b - mIoU_mean_a",
        "a_in_b_ci": "A's mean lies inside B's 95% CI",
        "b_in_a_ci": "B's mean lies inside A's 95% CI",
        "welch_p": "Welch's two-sided t-test of equal means from both cells' mean, std and n (NaN below two seeds)",
        "welch_rejects": "welch_p below alpha / (cells tested): a difference beyond a rerun's noise (Bonferroni)",
    },
    "compare_claims": {
        **{k: v for k, v in _IDENTITY.items() if k not in ("arm", "noise_conditioning")},
        "claim_id": "the claim's stable id",
        "comparison": "what minus what",
        "sigma": "the noise setting the claim is tested at",
        "claim": "the claim in words",
        **{f"{c}_{side}": f"{what} in results folder {side.upper()}" for side in "ab" for c, what in (
            ("n_pairs", "paired seeds"), ("mean_diff", "mean paired difference"), ("ci_low", "lower 95% CI bound"),
            ("ci_high", "upper 95% CI bound"), ("verdict", "the verdict (`absent`: no such claim)"),
            ("fragile", "the verdict is fragile"))},
        "differs": "the two verdicts differ",
        "robust_flip": "they differ and neither is fragile: not explained by a rerun's noise",
    },
}


# A config's own arms against the presets (docs/arms.md): a claims row, read as "the arm beats the preset".
OUTPUT_COLUMNS["comparisons"] = {
    **OUTPUT_COLUMNS["claims"],
    "claim_id": "the comparison's id: `<arm>_gt_<preset>` (`my-encoder_gt_ddep`, ...)",
    "claim": "the comparison in words: the config's arm beats the preset, e.g. `my-encoder > DDeP`",
    "sigma": "the config arm's noise setting (`-` for an arm that does not denoise)",
}


def column_meaning(table: str, column: str) -> str | None:
    """The meaning of `column` of ``{table}.csv`` (a family such as ``iou_*`` included); None if it has none."""
    meanings = OUTPUT_COLUMNS.get(table, {})
    return meanings.get(column) or next((m for k, m in meanings.items()
                                         if k.endswith("*") and column.startswith(k[:-1])), None)


def outputs_markdown() -> str:
    """docs/outputs.md's tables: one per CSV, a row per column."""
    lines = []
    for table, meanings in OUTPUT_COLUMNS.items():
        lines += [f"**`{table}.csv`**", "", "| column | meaning |", "|:---|:---|"]
        lines += [f"| `{column.replace('*', '<name>')}` | {meaning} |" for column, meaning in meanings.items()] + [""]
    return "\n".join(lines).rstrip("\n")
