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
