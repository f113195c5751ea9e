"""The supervised encoder pretraining model (the built-in stand-in for ImageNet-21k)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmseg.registry import MODELS

from ddep.models.transunet import apply_fast_path


@MODELS.register_module()
class GridPresenceClassifier(BaseModel):
    """The TransUNet encoder trained as a multi-label classifier: for every cell of a coarse
    grid, which classes occur there. Only the encoder is kept (saved in timm format).

    Args:
        backbone: encoder config (``TransUNetEncoder``).
        num_classes: classes per cell.
        grid: (rows, cols); targets are ordered row-major by cell, then class.
        fast_path: :func:`ddep.models.transunet.apply_fast_path` options.
    """

    def __init__(self, backbone: dict, num_classes: int, grid: tuple[int, int] = (2, 4),
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None,
                 fast_path: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.grid = tuple(grid)
        self.head = nn.Conv2d(self.backbone.out_channels[-1], num_classes, kernel_size=1)
        apply_fast_path(self, **(fast_path or {}))

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        tokens = self.backbone(inputs)[-1]
        cells = F.adaptive_avg_pool2d(tokens, self.grid)            # (N, C, rows, cols)
        return self.head(cells).permute(0, 2, 3, 1).flatten(1)    # row-major cells, then class

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = "tensor"):
        logits = self.logits(inputs)
        if mode == "tensor":
            return logits
        target = torch.tensor([s.metainfo["cls_target"] for s in data_samples],
                              dtype=logits.dtype, device=logits.device)
        if mode == "loss":
            return {"loss": F.binary_cross_entropy_with_logits(logits, target)}
        return [dict(pred=p, target=t) for p, t in zip(logits.detach() > 0, target.bool())]
