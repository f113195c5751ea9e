"""The tuning stage: one rule for every arm.

Every dataset x model x label fraction x arm of the label-efficiency grid is fine-tuned at every
point of the config's ``tuning.grid`` (fine-tune schedule keys: ``lr``, ``encoder_lr_mult``,
``iters``, ...) on the development seeds, and evaluated on the dataset's development split,
never on the split that results report. :func:`select` then picks, per cell, the point with the
best mean development mIoU by :data:`RULE`, written down before any run; the held-out fine-tunes
read the selection file (:func:`selected_setting`), and nothing else chooses a training setting.

Imports no torch or mmseg (the Snakefile reads it while Snakemake parses).
"""
from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterable
from pathlib import Path

from ddep.sweep import GRID, finetune_jobs

# The fine-tune schedule keys and their `ddep finetune` options (the schema's `schedule` keys).
SCHEDULE_FLAGS = {"iters": "--iters", "batch_size": "--batch-size", "lr": "--lr",
                  "encoder_lr_mult": "--encoder-lr-mult",
                  "checkpoint_interval": "--checkpoint-interval", "num_workers": "--num-workers"}
TUNABLE = ("lr", "encoder_lr_mult", "iters", "batch_size")
TUNING = "tuning stage"  # its part of the sweep, beside ddep.sweep's GRID and ABLATIONS

RULE = ("Per dataset, model, label fraction and arm, the grid point with the highest mean "
        "development mIoU over the development seeds is selected. A point any of whose seeds "
        "failed (the job crashed, or its final training loss is not finite) is out. Means are "
        "compared as the runs report them (mIoU to 2 decimals, mean unrounded); an exact tie goes "
        "to the point listed first in the grid (the grid's axes in the config's order, each axis' "
        "values in its order). A cell with no surviving point stops the selection with its name.")

# Where a held-out fine-tune's setting came from when the config has no `tuning` section: the
# dataset's schedule file, the same for every arm.
UNTUNED = "schedule-file"


def schedule_flags(overrides: dict) -> str:
    """``{"lr": 0.003, "iters": 500}`` as ``ddep finetune`` options: ``--lr 0.003 --iters 500``."""
    return " ".join(f"{SCHEDULE_FLAGS[k]} {v:g}" if isinstance(v, float) else f"{SCHEDULE_FLAGS[k]} {v}"
                    for k, v in overrides.items())


def grid_points(tuning: dict) -> list[dict]:
    """Every point of ``tuning.grid``, in grid order (the first axis varies slowest)."""
    grid = tuning["grid"]
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def point_slug(point: dict) -> str:
    """A grid point's folder name: ``lr-0.003__encoder_lr_mult-0.1``."""
    return "__".join(f"{k}-{v:g}" if isinstance(v, float) else f"{k}-{v}" for k, v in point.items())


def tuning_cells(config: dict) -> list[dict]:
    """The cells the tuning stage tunes: every (dataset, model, fraction, arm) of the
    label-efficiency grid, with its run name at the default noise setting."""
    cells: dict[tuple, dict] = {}
    for j in finetune_jobs(config):
        if j["part"] == GRID:
            key = (j["dataset"], j["model"], j["label_fraction"], j["arm"])
            cells.setdefault(key, {k: j[k] for k in ("dataset", "model", "model_spec", "label_fraction",
                                                     "fraction", "arm", "run")})
    return list(cells.values())


def tuning_jobs(config: dict) -> list[dict]:
    """Every fine-tune of the tuning stage: cell x grid point x development seed, with its
    output path (``resources/tuning/...``)."""
    tuning = config.get("tuning")
    if not tuning:
        return []
    points = grid_points(tuning)
    return [dict(cell, point=point, point_slug=point_slug(point), seed=seed,
                 json=f"resources/tuning/{cell['dataset']}/{cell['model']}/{cell['fraction']}/"
                      f"{cell['run']}/{point_slug(point)}/seed{seed}.json")
            for cell in tuning_cells(config) for point in points for seed in tuning["seeds"]]


def check_tuning(config: dict) -> None:
    """A config's ``tuning`` section makes sense: development seeds disjoint from ``seeds``, every
    dataset has a development split. ValueError naming the key otherwise."""
    tuning = config.get("tuning")
    if not tuning:
        return
    shared = sorted(set(tuning["seeds"]) & set(config["seeds"]))
    if shared:
        raise ValueError(f"tuning.seeds {shared} are also in `seeds`: development seeds must take no part "
                         f"in the reported results; pick seeds outside {sorted(config['seeds'])}")
    fixed = sorted(set(tuning["grid"]) & set((config.get("schedule") or {}).get("finetune") or {}))
    if fixed:
        raise ValueError(f"schedule.finetune sets {fixed}, which tuning.grid tunes: drop one of the two")
    for name, d in config["datasets"].items():
        if not development_split_given(d):
            raise ValueError(f"datasets.{name}: tuning needs a development split: for a generated "
                             f"dataset set `generate.n_dev` (> 0), else `development.n_images`")


def development_split_given(dataset: dict) -> bool:
    """Whether a dataset entry of the config names a development split."""
    return bool((dataset.get("generate") or {}).get("n_dev")) or \
        bool((dataset.get("development") or {}).get("n_images"))


def failed(record: dict) -> bool:
    """A tuning run that the rule counts as failed: the job crashed, or its loss is not finite."""
    loss = (record.get("training") or {}).get("final_loss")
    crashed = (record.get("tuning") or {}).get("status") == "failed"
    return crashed or (loss is not None and not math.isfinite(float(loss)))


def select(records: Iterable[dict], points: list[dict]) -> dict[tuple, dict]:
    """:data:`RULE` over tuning records (one per cell x point x seed, with ``dataset``, ``model``,
    ``label_fraction``, ``arm``, ``point`` and ``mIoU``): (dataset, model, fraction, arm) -> the
    selected point with its mean development mIoU and seeds."""
    by_cell: dict[tuple, dict[str, list[dict]]] = {}
    for r in records:
        cell = (r["dataset"], r["model"], str(r["label_fraction"]), r["arm"])
        by_cell.setdefault(cell, {}).setdefault(point_slug(r["point"]), []).append(r)
    order = [point_slug(p) for p in points]
    chosen: dict[tuple, dict] = {}
    for cell, by_point in by_cell.items():
        scored = [(sum(r["mIoU"] for r in runs) / len(runs), -order.index(slug), slug, runs)
                  for slug, runs in by_point.items() if slug in order and not any(failed(r) for r in runs)]
        if not scored:
            raise ValueError(f"tuning: no grid point of {'/'.join(cell)} finished without failure; "
                             f"see its runs under resources/tuning/ and widen or change tuning.grid")
        mean, _, slug, runs = max(scored)
        chosen[cell] = dict(setting=dict(points[order.index(slug)]), development_mIoU=round(mean, 2),
                            seeds=sorted(int(r["seed"]) for r in runs))
    return chosen


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def selection_document(chosen: dict[tuple, dict], provenance: dict) -> dict:
    """The selection file's content: its provenance, then dataset -> model -> fraction -> arm ->
    setting (with the development mIoU it won by)."""
    settings: dict = {}
    for (ds, model, fraction, arm), pick in sorted(chosen.items()):
        settings.setdefault(ds, {}).setdefault(model, {}).setdefault(fraction, {})[arm] = pick
    return dict(provenance=provenance, settings=settings)


def read_selection(path: str | Path) -> dict:
    import yaml
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tuning.selection: {path} not found: run `snakemake tune` to make it "
                                f"(or remove the config's `tuning` section to use the schedule files)")
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc.get("settings"), dict):
        raise ValueError(f"{path}: not a selection file (no `settings:` mapping); `snakemake tune` writes one")
    return doc


def selected_setting(selection: dict, path: str | Path, dataset: str, model: str, fraction: str,
                     arm: str) -> dict:
    """The fine-tune setting selected for one cell; ValueError naming the cell and the fix."""
    try:
        return dict(selection["settings"][dataset][model][str(fraction)][arm]["setting"])
    except (KeyError, TypeError):
        raise ValueError(f"{path} has no setting for {dataset}/{model}/{fraction}/{arm}: rerun "
                         f"`snakemake tune` for this config (its grid covers every cell)") from None


def held_out_settings(config: dict, jobs: Iterable[dict]) -> dict[tuple, dict]:
    """The selected setting of every held-out fine-tune's cell, (dataset, model, fraction, arm) ->
    setting; empty without a ``tuning`` section. Raises for a missing file or cell, so a sweep
    stops before any job runs."""
    tuning = config.get("tuning")
    if not tuning:
        return {}
    path = tuning["selection"]
    doc = read_selection(path)
    cells = {(j["dataset"], j["model"], j["label_fraction"], j["arm"]) for j in jobs}
    return {cell: selected_setting(doc, path, *cell) for cell in sorted(cells)}
