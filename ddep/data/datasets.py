"""MMSeg dataset classes of ddep (the dataset table is :mod:`ddep.data.table`).

Importing this module registers ``BuiltinStreetDataset`` and ``UnlabelledImageDataset`` in
``mmseg.registry.DATASETS``.
"""

from __future__ import annotations

import os.path as osp
from typing import Any

from mmengine.dataset import BaseDataset
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ddep.data.builtin import BUILTIN_CLASSES, BUILTIN_PALETTE
from ddep.data.table import DatasetNotFoundError, find_images


@DATASETS.register_module()
class BuiltinStreetDataset(BaseSegDataset):
    """The procedurally generated street scenes (see ``ddep.data.builtin``)."""

    METAINFO = dict(classes=BUILTIN_CLASSES, palette=[list(p) for p in BUILTIN_PALETTE])

    def __init__(self, img_suffix: str = ".png", seg_map_suffix: str = ".png",
                 reduce_zero_label: bool = False, **kwargs: Any) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)


@DATASETS.register_module()
class UnlabelledImageDataset(BaseDataset):
    """Every image (png/jpg/jpeg, any case, recursive, sorted) under
    ``data_root/data_prefix.img_path``: a flat folder, a dataset's train images or an
    ImageNet-style tree (``train/n01440764/n01440764_10026.JPEG``).

    Items carry ``img_path`` only, so ``PackSegInputs`` packs no label. ``max_images`` keeps the
    first N in sorted order.
    """

    def __init__(self, data_root: str = "", data_prefix: dict | None = None,
                 max_images: int | None = None, **kwargs: Any) -> None:
        self.max_images = max_images
        super().__init__(data_root=data_root, data_prefix=data_prefix or dict(img_path=""),
                         **kwargs)

    def load_data_list(self) -> list[dict]:
        folder = self.data_prefix.get("img_path") or self.data_root
        if not osp.isdir(folder):
            raise DatasetNotFoundError(f"unlabelled image folder {folder!r} does not exist")
        paths = sorted(find_images(folder))
        if self.max_images is not None:
            paths = paths[: self.max_images]
        if not paths:
            raise DatasetNotFoundError(f"no png/jpg/jpeg images under {folder!r}")
        return [dict(img_path=p, seg_fields=[]) for p in paths]
