"""TransUNet models registered in MMSegmentation (import via ``custom_imports``)."""
import ddep.compat  # noqa: F401  (mmengine checkpoint loading fix, before any runner loads)
from ddep.models.classifier import ImageClassifier
from ddep.models.denoising import DenoisingPretrainer, TrainableOnlyOptimWrapperConstructor
from ddep.models.transunet import (
                                   PRESETS,
                                   TransUNetEncoder,
                                   TransUNetHead,
                                   TransUNetSegmentor,
                                   build_hybrid_vit,
                                   get_preset,
)
from ddep.models.weights import CheckpointError, TransferReport, export_weights, load_timm_encoder, transfer_weights

__all__ = ["PRESETS", "CheckpointError", "DenoisingPretrainer", "ImageClassifier", "TrainableOnlyOptimWrapperConstructor",
           "TransUNetEncoder", "TransUNetHead", "TransUNetSegmentor", "TransferReport",
           "build_hybrid_vit", "export_weights", "get_preset", "load_timm_encoder",
           "transfer_weights"]
