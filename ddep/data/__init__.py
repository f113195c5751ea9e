"""Datasets: the built-in generator, the table of paper datasets, label splits, previews.

This package imports no torch or mmseg (the workflow's preflight uses it while Snakemake parses
the Snakefile); the MMSeg dataset classes are registered by importing :mod:`ddep.data.datasets`
(the jobs' ``custom_imports`` do).
"""

from ddep.data.builtin import (
    BUILTIN_CLASSES,
    BUILTIN_PALETTE,
    generate_builtin,
    render_image,
)
from ddep.data.preview import write_preview_grid, write_source_preview
from ddep.data.splits import (
    list_train_stems,
    parse_fraction,
    select_split,
    split_size,
    write_split,
)
from ddep.data.table import (
    DATASET_DEFS,
    DatasetDef,
    DatasetNotFoundError,
    check_dataset,
    config_literal,
    find_images,
    get_dataset_def,
)

__all__ = [
    "BUILTIN_CLASSES", "BUILTIN_PALETTE", "DATASET_DEFS", "DatasetDef", "DatasetNotFoundError",
    "check_dataset", "config_literal", "find_images", "generate_builtin", "get_dataset_def",
    "list_train_stems", "parse_fraction", "render_image", "select_split", "split_size",
    "write_preview_grid", "write_source_preview", "write_split",
]
