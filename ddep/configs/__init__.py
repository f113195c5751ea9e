"""Config pieces the CLI composes into full MMSegmentation configs."""
from ddep.configs.models import DATA_PREPROCESSOR, denoiser_cfg, segmentor_cfg
from ddep.configs.pipelines import classification_pipeline, image_train_pipeline, seg_test_pipeline, seg_train_pipeline

__all__ = ["DATA_PREPROCESSOR", "classification_pipeline", "denoiser_cfg", "image_train_pipeline",
           "seg_test_pipeline", "seg_train_pipeline", "segmentor_cfg"]
