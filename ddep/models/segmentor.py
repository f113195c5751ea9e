"""The segmentor of every model: mmseg's EncoderDecoder that starts from ddep's pretrainings,
and the shape probe the pretraining models use to fit any backbone and head."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

from ddep.models.transunet import apply_fast_path


def probe(fn, module: nn.Module, size: Sequence[int]) -> torch.Tensor:
    """``fn`` of a zero image of ``size`` (h, w), run once in eval mode without gradients (so no
    running statistics change): how the models learn shapes a config does not state (a
    decode head's output stride, a backbone's last width)."""
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            return fn(torch.zeros(1, 3, *size))
    finally:
        module.train(was)


def last_feature(feats: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """The deepest feature map of a backbone's output (mmseg backbones return a tuple of stages;
    a ViT's stage may be a pair (feature map, class token), as DPT's is)."""
    last = feats if isinstance(feats, torch.Tensor) else feats[-1]
    return last if isinstance(last, torch.Tensor) else last[0]


def load_pretrained(model: nn.Module, encoder_weights: str | None, init_from: str | None,
                    model_name: str) -> None:
    """Load a model's pretrained weights after its own initialisation: the supervised encoder
    (``encoder_weights``, into ``model.backbone``), then a denoising checkpoint (``init_from``,
    all but the final projection), reporting what was loaded, skipped and missing."""
    from ddep.models.weights import load_encoder, transfer_weights
    if encoder_weights:
        load_encoder(model.backbone, encoder_weights, f"the backbone of {model_name}")
        print_log(f"encoder weights from {encoder_weights}", logger="current")
    if init_from:
        report = transfer_weights(model, init_from, model_name)
        print_log(f"initialised from {init_from}: {report.summary()}", logger="current")


@MODELS.register_module()
@MODELS.register_module(name="TransUNetSegmentor")  # the name of configs saved before the models axis
class PretrainableSegmentor(EncoderDecoder):
    """mmseg's EncoderDecoder (any backbone, neck, decode and auxiliary heads) that can start
    from ddep's pretrainings, loaded in :meth:`init_weights`, before any resume, so resuming wins.

    Args:
        encoder_weights: supervised backbone weights (21K, and the encoder DDeP froze).
        init_from: a weights checkpoint of a :class:`DenoisingPretrainer` of this model: all but
            the final projection (``decode_head.conv_seg``) is loaded; auxiliary heads, not
            pretrained, keep their random initialisation.
        fast_path: :func:`apply_fast_path` options (``channels_last``, ``compile``).
    """

    final_projection = "decode_head.conv_seg"

    def __init__(self, *args, init_from: str | None = None, encoder_weights: str | None = None,
                 fast_path: dict | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.init_from = init_from
        self.encoder_weights = encoder_weights
        apply_fast_path(self, **(fast_path or {}))

    def init_weights(self) -> None:
        super().init_weights()
        load_pretrained(self, self.encoder_weights, self.init_from,
                        f"this {type(self.backbone).__name__} + {type(self.decode_head).__name__} model")
