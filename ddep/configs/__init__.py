"""ddep's MMSegmentation config files (``_base_/``: runtime, denoising pretraining, model
presets, datasets, schedules) and the functions that compose them into one job's config."""
from ddep.configs.compose import (
    CONFIG_DIR,
    DENOISING,
    RUNTIME,
    dataset_config,
    dataset_file,
    denoise_config,
    denoiser_cfg,
    finetune_config,
    model_file,
    schedule_config,
    schedule_file,
    segmentor_cfg,
    slide_stride,
    unlabelled_pipeline,
    with_encoder_lr_mult,
    with_iters,
)

__all__ = ["CONFIG_DIR", "DENOISING", "RUNTIME", "dataset_config", "dataset_file", "denoise_config", "denoiser_cfg",
           "finetune_config", "model_file", "schedule_config", "schedule_file", "segmentor_cfg",
           "slide_stride", "unlabelled_pipeline", "with_encoder_lr_mult", "with_iters"]
