"""Image-level multi-label data for the supervised encoder (built-in ImageNet-21k stand-in)."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmseg.registry import DATASETS, METRICS


@DATASETS.register_module()
class MultiLabelImageDataset(BaseDataset):
    """``ann_file`` is a JSON object ``{image file name: multi-hot target}``; images live in
    ``data_prefix['img_path']``. Each sample carries its target as ``cls_target``."""

    def load_data_list(self) -> list[dict]:
        targets = json.loads(Path(self.ann_file).read_text())
        img_dir = Path(self.data_prefix.get("img_path", ""))
        return [dict(img_path=str(img_dir / name), cls_target=target)
                for name, target in sorted(targets.items())]


@METRICS.register_module()
class MultiLabelAccuracy(BaseMetric):
    """Per-label accuracy, and the accuracy of always predicting each label's majority value."""

    default_prefix = "cls"

    def process(self, data_batch, data_samples) -> None:
        for s in data_samples:
            self.results.append((s["pred"].cpu(), s["target"].cpu()))

    def compute_metrics(self, results: list) -> dict[str, float]:
        pred = torch.stack([r[0] for r in results]).float()
        target = torch.stack([r[1] for r in results]).float()
        majority = (target.mean(0) > 0.5).float()
        return dict(accuracy=(pred == target).float().mean().item(),
                    majority_accuracy=(majority == target).float().mean().item())
