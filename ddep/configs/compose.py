"""Compose the config files under ``_base_/`` into one job's mmengine config.

A job's config is the runtime file (or the denoising pretraining's), a model preset file and
a dataset file, with the model fitted to the dataset (classes, crop size, sliding window); the
job then adds its schedule file (with the command line's changes) and its per-run values
(seed, split file, initial weights, work dir) and saves the result beside its output, where it
runs with mmseg's own ``tools/train.py`` and ``tools/test.py``."""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Sequence

from mmengine.config import Config

CONFIG_DIR = Path(__file__).resolve().parent / "_base_"
RUNTIME = CONFIG_DIR / "default_runtime.py"
DENOISING = CONFIG_DIR / "denoising_pretraining.py"


def _base_file(kind: str, name: str) -> Path:
    path = CONFIG_DIR / kind / f"{name}.py"
    if not path.is_file():
        have = sorted(p.stem for p in (CONFIG_DIR / kind).glob("*.py"))
        raise ValueError(f"no config file {path} for {name!r}; have: {', '.join(have)}")
    return path


def model_file(preset: str) -> Path:
    """``_base_/models/transunet_{preset}.py``."""
    return _base_file("models", f"transunet_{preset}")


def dataset_file(dataset: str) -> Path:
    """``_base_/datasets/{dataset}.py``."""
    return _base_file("datasets", dataset)


def schedule_file(dataset: str, stage: str) -> Path:
    """``_base_/schedules/{dataset}_{stage}.py``, else the stage's shared ``{stage}.py`` (the
    paper's ``denoise.py``). ``dataset`` must have a dataset file (a typo is an error)."""
    dataset_file(dataset)
    folder = CONFIG_DIR / "schedules"
    for name in (f"{dataset}_{stage}", stage):
        if (folder / f"{name}.py").is_file():
            return folder / f"{name}.py"
    have = sorted(p.stem for p in folder.glob("*.py"))
    raise ValueError(f"no {stage!r} schedule for dataset {dataset!r}: neither {folder}/"
                     f"{dataset}_{stage}.py nor {stage}.py exists (have: {', '.join(have)}); "
                     f"add one, or pick another dataset's with --schedule")


def schedule_config(dataset: str, stage: str, iters: int | None = None,
                    batch_size: int | None = None, lr: float | None = None,
                    checkpoint_interval: int | None = None, num_workers: int | None = None,
                    encoder_lr_mult: float | None = None) -> dict:
    """The schedule file's keys (optim_wrapper, param_scheduler, train_cfg, default_hooks,
    train_dataloader) with the run's changes (``None``: the file's value)."""
    sched = Config.fromfile(str(schedule_file(dataset, stage))).to_dict()
    if iters is not None:
        sched = with_iters(sched, iters)
    loader = sched["train_dataloader"]
    if batch_size is not None:
        loader["batch_size"] = batch_size
    if num_workers is not None:
        loader.update(num_workers=num_workers, persistent_workers=num_workers > 0)
    if lr is not None:
        sched["optim_wrapper"]["optimizer"]["lr"] = lr
    if checkpoint_interval is not None:
        sched["default_hooks"]["checkpoint"]["interval"] = checkpoint_interval
    if encoder_lr_mult is not None:
        sched["optim_wrapper"] = with_encoder_lr_mult(sched["optim_wrapper"], encoder_lr_mult)
    return sched


def with_iters(sched: dict, iters: int) -> dict:
    """``sched`` trained for ``iters``: its warm-up cut to at most a tenth (a short run keeps
    most of its decay), the decay ending at ``iters``, validation after it, not at it
    (mmengine's loop validates at max_iters unless val_begin lies beyond it), and the checkpoint
    interval scaled alike (a killed short run still resumes from a recent checkpoint)."""
    sched = copy.deepcopy(sched)
    steps = {s["type"]: s for s in sched["param_scheduler"]}
    if set(steps) - {"LinearLR", "PolyLR"} or "PolyLR" not in steps:
        raise ValueError(f"cannot rescale param_scheduler {sorted(steps)} to {iters} iterations "
                         f"(only a LinearLR warm-up + PolyLR): set it with --cfg-options")
    warmup = min(steps["LinearLR"]["end"] if "LinearLR" in steps else 0, iters // 10)
    poly = dict(steps["PolyLR"], begin=warmup, end=iters)
    sched["param_scheduler"] = [dict(steps["LinearLR"], end=warmup), poly] if warmup else [poly]
    checkpoint = sched["default_hooks"]["checkpoint"]
    checkpoint["interval"] = max(1, checkpoint["interval"] * iters // sched["train_cfg"]["max_iters"])
    sched["train_cfg"].update(max_iters=iters, val_begin=iters + 1, val_interval=iters + 1)
    return sched


def with_encoder_lr_mult(optim_wrapper: dict, mult: float) -> dict:
    """``optim_wrapper`` with the encoder's (``backbone``) LR factor ``mult`` (1: none)."""
    wrapper = {k: v for k, v in optim_wrapper.items() if k != "paramwise_cfg"}
    if mult != 1.0:
        wrapper["paramwise_cfg"] = dict(custom_keys={"backbone": dict(lr_mult=mult)})
    return wrapper


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def slide_stride(crop_size: Sequence[int]) -> tuple[int, int]:
    """Stride of the sliding window at evaluation: 2/3 of the crop, as mmseg's configs use
    (512 -> 341, 480 -> 320, 769 -> 513)."""
    return tuple(round(c * 2 / 3) for c in crop_size)  # type: ignore[return-value]


def segmentor_cfg(preset: str, num_classes: int, img_size: int | Sequence[int],
                  test_stride: int | Sequence[int] | None = None, pretrained: str | None = None,
                  init_from: str | None = None, norm_cfg: dict | None = None,
                  ignore_index: int = 255) -> dict:
    """The preset's TransUNet for segmentation. ``pretrained``: timm-format encoder weights
    (21K / DDeP); ``init_from``: a denoising checkpoint (all but the final projection).

    Inference slides a window of the training crop (``img_size``) with ``test_stride`` over the
    test image, as mmseg's ViT configs do, so the position embedding is always used at the size
    it was trained at (``test_stride=None``: one pass over the whole image). Test images are
    first padded to a multiple of the token stride, and the padding is cut off again before the
    prediction is resized to the label map's size, so every image size works."""
    model = Config.fromfile(str(model_file(preset))).model.to_dict()
    size = _pair(img_size)
    model["init_from"] = init_from
    model["data_preprocessor"]["size"] = size
    model["backbone"].update(img_size=size, pretrained=pretrained)
    model["decode_head"].update(num_classes=num_classes, ignore_index=ignore_index)
    if norm_cfg is not None:
        model["decode_head"]["norm_cfg"] = norm_cfg
    if test_stride is not None:
        model["test_cfg"] = dict(mode="slide", crop_size=size, stride=_pair(test_stride))
    return model


def denoiser_cfg(preset: str, img_size: int | Sequence[int], noise: dict | None = None,
                 freeze_encoder: bool = False, noise_conditioning: bool = False,
                 pretrained: str | None = None, norm_cfg: dict | None = None) -> dict:
    """The denoising-pretraining model of the preset: DeP (``freeze_encoder=False``) or DDeP.
    Its decoder predicts the 3 image channels; it has no loss config and is never tested."""
    seg = segmentor_cfg(preset, 3, img_size, pretrained=pretrained, norm_cfg=norm_cfg)
    head = {k: v for k, v in seg["decode_head"].items() if k not in ("ignore_index", "loss_decode")}
    head["noise_conditioning"] = noise_conditioning
    preprocessor = {k: v for k, v in seg["data_preprocessor"].items() if k != "test_cfg"}
    return dict(type="DenoisingPretrainer", noise=noise or {}, freeze_encoder=freeze_encoder,
                data_preprocessor=preprocessor, backbone=seg["backbone"], decode_head=head)


def _with_crop(pipeline: list, crop: tuple[int, int]) -> list:
    return [dict(step, crop_size=crop) if step["type"] == "RandomCrop" else step
            for step in pipeline]


def finetune_config(dataset: str, preset: str, data_root: str | os.PathLike,
                    crop_size: Sequence[int] | None = None) -> Config:
    """Runtime + dataset at ``data_root`` + the preset's segmentor for its classes, trained on
    ``crop_size`` (default: the dataset file's) and tested with sliding windows of it."""
    cfg = Config.fromfile(str(RUNTIME))
    cfg.merge_from_dict(Config.fromfile(str(dataset_file(dataset))).to_dict())
    crop = _pair(crop_size or cfg.crop_size)
    train_pipeline = _with_crop(cfg.train_dataloader.dataset.pipeline, crop)
    cfg.merge_from_dict(dict(
        data_root=str(data_root), crop_size=crop,
        train_dataloader=dict(dataset=dict(data_root=str(data_root), pipeline=train_pipeline)),
        val_dataloader=dict(dataset=dict(data_root=str(data_root)))))
    cfg.model = segmentor_cfg(preset, cfg.num_classes, crop, test_stride=slide_stride(crop))
    return cfg


def unlabelled_pipeline(train_pipeline: list) -> list:
    """A labelled training pipeline's geometry without its labels and photometric jitter (the
    noise is the only corruption); its crop cannot balance classes without labels."""
    steps = []
    for step in train_pipeline:
        if step["type"] in ("LoadAnnotations", "PhotoMetricDistortion"):
            continue
        step = {k: v for k, v in step.items() if k != "cat_max_ratio"}
        steps.append(step)
    return steps


def denoise_config(dataset: str, preset: str, unlabelled_dir: str | os.PathLike,
                   crop_size: Sequence[int] | None = None,
                   image_crop: Sequence[int] | None = None) -> Config:
    """``denoising_pretraining.py`` + the preset's denoiser + every image under
    ``unlabelled_dir``, with the dataset's training geometry (crop, random resize, flip).

    The model is built for ``crop_size`` (default: the dataset file's), the fine-tuning crop,
    so its position embedding transfers as it is. ``image_crop`` (default: ``crop_size``)
    crops the unlabelled images instead, for images of another shape than the target's (the
    built-in source set's 64 x 64, ImageNet's 224 x 224): the encoder then resamples its
    position embedding on the fly, as it does at fine-tuning for the supervised encoder."""
    data = Config.fromfile(str(dataset_file(dataset)))
    crop = _pair(crop_size or data.crop_size)
    images = _pair(image_crop or crop)
    pipeline = _with_crop(unlabelled_pipeline(data.train_dataloader.dataset.pipeline), images)
    model = denoiser_cfg(preset, crop)
    model["data_preprocessor"]["size"] = images
    cfg = Config.fromfile(str(DENOISING))
    cfg.merge_from_dict(dict(
        dataset_name=data.dataset_name, model=model,
        train_dataloader=dict(dataset=dict(data_root=str(unlabelled_dir), pipeline=pipeline))))
    return cfg


def copy_val_to_test(cfg: Config) -> None:
    """Test as validated (mmseg's ``test_dataloader = val_dataloader``, after the job's changes)."""
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    cfg.test_evaluator = copy.deepcopy(cfg.val_evaluator)
