"""ddep's models registered in MMSegmentation (import via ``custom_imports``): the TransUNet,
the segmentor every model fine-tunes as, and the pretraining models of any segmentor."""
import ddep.compat  # noqa: F401  (mmengine checkpoint loading fix, before any runner loads)
from ddep.models.classifier import ImageClassifier
from ddep.models.segmentor import PretrainableSegmentor
from ddep.models.denoising import DenoisingPretrainer, TrainableOnlyOptimWrapperConstructor
from ddep.models.transunet import (
                                   PRESETS,
                                   TransUNetEncoder,
                                   TransUNetHead,
                                   build_hybrid_vit,
                                   get_preset,
)
from ddep.models.weights import (CheckpointError, TransferReport, encoder_state_dict, export_weights,
                                 load_encoder, load_timm_encoder, transfer_weights)

__all__ = ["PRESETS", "CheckpointError", "DenoisingPretrainer", "ImageClassifier", "TrainableOnlyOptimWrapperConstructor",
           "TransUNetEncoder", "TransUNetHead", "PretrainableSegmentor", "TransferReport",
           "build_hybrid_vit", "encoder_state_dict", "export_weights", "load_encoder", "get_preset", "load_timm_encoder",
           "transfer_weights"]
