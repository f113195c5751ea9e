"""Content checks on every image and label map a job reads, as mmseg transforms.

The layout of a dataset is checked before a job starts (``ddep.data.datasets.check_dataset``);
what is inside the files is checked here, when the data pipeline reads them, so a bad file
stops the job with one :class:`BadInputError` naming it instead of a data-loader traceback, a
silently truncated image or labels the loss quietly misreads. Every job's pipelines get these
loaders through :func:`checked_pipeline`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

IGNORE_INDEX = 255


class BadInputError(ValueError):
    """An image or label map cannot be used; the message names the file and what is wrong."""


def _truncation(data: bytes) -> str | None:
    """Why ``data`` is a truncated PNG/JPEG (decoders may return the readable part silently)."""
    if not data:
        return "the file is empty"
    if data.startswith(b"\x89PNG") and data.rfind(b"IEND") < 0:
        return "truncated PNG (no IEND chunk)"
    # JPEG: the end-of-image marker must follow the last start-of-scan (an EXIF thumbnail has
    # its own pair earlier; entropy-coded data never contains these markers)
    if data.startswith(b"\xff\xd8") and data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        return "truncated JPEG (no end-of-image marker)"
    return None


def _read_checked(path: str, what: str) -> None:
    try:
        data = fileio.get(path)
    except OSError as e:
        raise BadInputError(f"cannot read {what} {path}: {e.strerror or e}") from None
    problem = _truncation(data)
    if problem:
        raise BadInputError(f"cannot read {what} {path}: {problem}; replace or remove it")


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile``; a missing, empty, truncated or undecodable image raises
    :class:`BadInputError` naming it."""

    def transform(self, results: dict) -> dict:
        path = results["img_path"]
        _read_checked(path, "image")
        try:
            out = super().transform(results)
        except Exception as e:  # noqa: BLE001  (decoders raise anything; the file is the news)
            raise BadInputError(f"cannot read image {path}: {e}; replace or remove it") from None
        return out


@TRANSFORMS.register_module()
class CheckedLoadAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations``, then: the label map has the image's size, and every value
    (after ``reduce_zero_label``) is a class index below ``num_classes`` or the ignore value."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        path = results["seg_map_path"]
        _read_checked(path, "label map")
        try:
            results = super().transform(results)
        except Exception as e:  # noqa: BLE001
            raise BadInputError(f"cannot read label map {path}: {e}; replace or remove it") from None
        label = results["gt_seg_map"]
        size = results.get("ori_shape")
        if label.ndim != 2 or (size is not None and tuple(label.shape) != tuple(size[:2])):
            shape = "x".join(map(str, label.shape))
            raise BadInputError(
                f"label map {path} is {shape} but its image {results.get('img_path')} is "
                f"{size[0]}x{size[1]}: a label map must be a single-channel image of the "
                f"image's size")
        bad = (label >= self.num_classes) & (label != self.ignore_index)
        if bad.any():
            values = np.unique(label[bad]).tolist()
            shown = ", ".join(map(str, values[:10])) + (", ..." if len(values) > 10 else "")
            raise BadInputError(
                f"label map {path} has values {shown} outside the dataset's {self.num_classes} "
                f"classes (0..{self.num_classes - 1}, ignore {self.ignore_index}): wrong dataset "
                f"or labels not converted to train ids")
        return results


def checked_pipeline(pipeline: list[dict], num_classes: int | None = None,
                     ignore_index: int = IGNORE_INDEX) -> list[dict]:
    """``pipeline`` with mmcv/mmseg's image and label loaders replaced by the checking ones."""
    checked = []
    for step in pipeline:
        step = dict(step)
        if step["type"] == "LoadImageFromFile":
            step["type"] = "CheckedLoadImageFromFile"
        elif step["type"] == "LoadAnnotations":
            if num_classes is None:
                raise ValueError("checking label maps needs the dataset's num_classes")
            step.update(type="CheckedLoadAnnotations", num_classes=num_classes)
            if ignore_index != IGNORE_INDEX:  # only where it differs: configs stay as they were
                step["ignore_index"] = ignore_index
        checked.append(step)
    return checked


def count_split(split_file: str | Path) -> int:
    """Images listed in a split file; an empty one is an error naming it."""
    n = sum(1 for line in Path(split_file).read_text().splitlines() if line.strip())
    if n == 0:
        raise BadInputError(f"split file {split_file} lists no images: remake it with `ddep split` "
                            f"(a fraction must select at least one image)")
    return n
