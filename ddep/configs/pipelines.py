"""Data pipelines (mmseg transforms), following mmseg's ``_base_/datasets`` configs.

Sizes follow mmseg: ``crop_size`` is (h, w), ``scale`` is (w, h)."""
from __future__ import annotations

from typing import Sequence


def seg_train_pipeline(crop_size: Sequence[int], scale: Sequence[int],
                       ratio_range: Sequence[float] = (0.5, 2.0)) -> list[dict]:
    """Labelled training: mmseg's standard random resize, crop, flip and photometric jitter."""
    return [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"),
            dict(type="RandomResize", scale=tuple(scale), ratio_range=tuple(ratio_range), keep_ratio=True),
            dict(type="RandomCrop", crop_size=tuple(crop_size), cat_max_ratio=0.75),
            dict(type="RandomFlip", prob=0.5), dict(type="PhotoMetricDistortion"),
            dict(type="PackSegInputs")]


def seg_test_pipeline(scale: Sequence[int]) -> list[dict]:
    return [dict(type="LoadImageFromFile"), dict(type="Resize", scale=tuple(scale), keep_ratio=True),
            dict(type="LoadAnnotations"), dict(type="PackSegInputs")]


def image_train_pipeline(crop_size: Sequence[int], scale: Sequence[int],
                         ratio_range: Sequence[float] = (0.5, 2.0)) -> list[dict]:
    """Unlabelled images for denoising: the same geometry as labelled training, no labels and
    no photometric jitter (the noise is the only corruption)."""
    return [dict(type="LoadImageFromFile"),
            dict(type="RandomResize", scale=tuple(scale), ratio_range=tuple(ratio_range), keep_ratio=True),
            dict(type="RandomCrop", crop_size=tuple(crop_size)),
            dict(type="RandomFlip", prob=0.5), dict(type="PackSegInputs")]


def classification_pipeline() -> list[dict]:
    """Grid-presence targets are tied to positions: no flips or crops."""
    meta = ("img_path", "ori_shape", "img_shape", "cls_target")
    return [dict(type="LoadImageFromFile"), dict(type="PackSegInputs", meta_keys=meta)]
