"""Datasets: the built-in generator, paper dataset definitions, label splits, previews.

Importing this package registers ``BuiltinStreetDataset`` and ``UnlabelledImageDataset`` in
``mmseg.registry.DATASETS``.
"""

from ddep.data.builtin import BUILTIN_CLASSES, BUILTIN_PALETTE, generate_builtin, render_image
from ddep.data.datasets import (
    DATASET_DEFS,
    BuiltinStreetDataset,
    DatasetDef,
    DatasetNotFoundError,
    UnlabelledImageDataset,
    check_dataset,
    dataset_cfg,
    get_dataset_def,
)
from ddep.data.preview import write_preview_grid
from ddep.data.splits import (
    list_train_stems,
    parse_fraction,
    select_split,
    split_size,
    write_split,
)

__all__ = [
    "BUILTIN_CLASSES", "BUILTIN_PALETTE", "DATASET_DEFS", "BuiltinStreetDataset", "DatasetDef",
    "DatasetNotFoundError", "UnlabelledImageDataset", "check_dataset", "dataset_cfg",
    "generate_builtin", "get_dataset_def", "list_train_stems", "parse_fraction", "render_image",
    "select_split", "split_size", "write_preview_grid", "write_split",
]
