"""Single-label image classification data for the supervised encoder (the built-in stand-in for
ImageNet-21k): an ImageNet-style tree of class folders, and top-1 accuracy."""
from __future__ import annotations

from pathlib import Path

import torch
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmseg.registry import DATASETS, METRICS

from ddep.data.table import DatasetNotFoundError, find_images


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Every image under ``data_prefix['img_path']/CLASS/`` (ImageNet's layout:
    ``train/n01440764/n01440764_10026.JPEG``), labelled by its folder. The classes are the
    sorted folder names, or ``metainfo['classes']`` when given (then every folder must be one
    of them). Each sample carries its class index as ``gt_label``."""

    def load_data_list(self) -> list[dict]:
        root = Path(self.data_prefix.get("img_path", ""))
        folders = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        if not folders:
            raise DatasetNotFoundError(f"no class folders under {root} (expected CLASS/IMAGE.png)")
        classes = list(self.metainfo.get("classes") or folders)
        unknown = sorted(set(folders) - set(classes))
        if unknown:
            raise DatasetNotFoundError(f"{root}: class folders {unknown[:5]} are not among the "
                                       f"{len(classes)} classes of this dataset")
        self._metainfo["classes"] = tuple(classes)
        return [dict(img_path=path, gt_label=classes.index(name))
                for name in folders for path in sorted(find_images(root / name))]


@METRICS.register_module()
class TopOneAccuracy(BaseMetric):
    """Top-1 accuracy, beside chance (one over the number of classes) and the accuracy of always
    answering the most frequent class."""

    default_prefix = "cls"

    def __init__(self, num_classes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes

    def process(self, data_batch, data_samples) -> None:
        self.results.extend((int(s["pred"]), int(s["target"])) for s in data_samples)

    def compute_metrics(self, results: list) -> dict[str, float]:
        pred, target = torch.tensor(results).T
        majority = torch.bincount(target, minlength=self.num_classes).max().item() / len(target)
        return dict(accuracy=(pred == target).float().mean().item(), chance=1.0 / self.num_classes,
                    majority_accuracy=majority)
