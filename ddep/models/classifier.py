"""The supervised encoder pretraining model (the built-in stand-in for ImageNet-21k)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmseg.registry import MODELS

from ddep.models.segmentor import last_feature, probe
from ddep.models.transunet import apply_fast_path


@MODELS.register_module()
class ImageClassifier(BaseModel):
    """A segmentor's backbone trained as a single-label image classifier, as the 21K encoder was
    on ImageNet-21k: its last feature map average-pooled, layer-normed, then a linear layer
    (the last stage of backbones that return several). Only the backbone is kept
    (:func:`ddep.models.weights.encoder_state_dict`); the head is thrown away, like ImageNet's.

    Args:
        backbone: any mmseg backbone config (e.g. ``TransUNetEncoder``, ``MixVisionTransformer``).
        num_classes: the source set's classes.
        fast_path: :func:`ddep.models.transunet.apply_fast_path` options.
    """

    def __init__(self, backbone: dict, num_classes: int, data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None, fast_path: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        size = getattr(self.data_preprocessor, "size", None) or (64, 64)
        width = probe(lambda x: last_feature(self.backbone(x)), self.backbone, size).shape[1]
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)
        apply_fast_path(self, **(fast_path or {}))

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        features = last_feature(self.backbone(inputs))          # (N, C, h, w)
        return self.head(self.norm(features.mean(dim=(2, 3))))

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = "tensor"):
        logits = self.logits(inputs)
        if mode == "tensor":
            return logits
        target = torch.tensor([s.metainfo["gt_label"] for s in data_samples], device=logits.device)
        if mode == "loss":
            return {"loss": F.cross_entropy(logits, target)}
        return [dict(pred=p, target=t) for p, t in zip(logits.detach().argmax(1), target)]
