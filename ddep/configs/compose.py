"""Compose the config files under ``_base_/`` into one job's mmengine config.

A job's config is the runtime file (or the denoising pretraining's), a model's config (a
ddep model file, an mmseg config or any file: :class:`ddep.sweep.Model`) and a dataset file, with the model fitted to the dataset (classes, crop size, sliding window); the
job then adds its schedule file (with the command line's changes) and its per-run values
(seed, split file, initial weights, work dir) and saves the result beside its output, where it
runs with mmseg's own ``tools/train.py`` and ``tools/test.py``."""
from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Sequence

from mmengine.config import Config

from ddep.sweep import PRESET_MODELS, Model

CONFIG_DIR = Path(__file__).resolve().parent / "_base_"
RUNTIME = CONFIG_DIR / "default_runtime.py"
DENOISING = CONFIG_DIR / "denoising_pretraining.py"
OWN_DATASET = CONFIG_DIR / "own_dataset.py"  # a sweep entry's dataset of a type and paths


def _base_file(kind: str, name: str) -> Path:
    path = CONFIG_DIR / kind / f"{name}.py"
    if not path.is_file():
        have = sorted(p.stem for p in (CONFIG_DIR / kind).glob("*.py"))
        raise ValueError(f"no config file {path} for {name!r}; have: {', '.join(have)}")
    return path


def model_file(name: str) -> Path:
    """``_base_/models/{name}.py`` (``tiny`` and ``r50_vit_b16``: the TransUNet presets)."""
    return _base_file("models", PRESET_MODELS.get(name, name))


def model_source(model: str | Model) -> str:
    """Where a model's config is: an ``mmseg::`` config, a ``.py`` file, or a file of
    ``_base_/models``; one clear error for a name that is none of these."""
    config = Model.parse(model).config
    if config.startswith("mmseg::") or config.endswith(".py"):
        return config
    try:
        return str(model_file(config))
    except ValueError:
        have = sorted(p.stem for p in (CONFIG_DIR / "models").glob("*.py"))
        raise ValueError(
            f"unknown model {config!r}: not a ddep model ({', '.join(have)}), an mmseg config "
            f"('mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py') or a .py "
            f"config file") from None


def load_model(model: str | Model) -> dict:
    """The ``model`` dict of a model's config, checked to be an encoder-decoder segmentor (read
    once per process: resolving an ``mmseg::`` config reads mmseg's metafiles, about a second)."""
    return copy.deepcopy(_load_model(model_source(model)))


@functools.cache
def _load_model(source: str) -> dict:
    try:
        if source.startswith("mmseg::"):
            from mmengine.hub import get_config
            cfg = get_config(source)
        else:
            cfg = Config.fromfile(source)
    except (FileNotFoundError, ValueError) as e:
        raise ValueError(f"model config {source} cannot be read: {e}") from None
    except ImportError as e:  # its custom_imports (mmpretrain's backbones, ...) are not installed
        raise ValueError(missing_package(source, e)) from None
    m = cfg.to_dict().get("model")
    if not isinstance(m, dict) or "backbone" not in m or not isinstance(m.get("decode_head"), dict):
        what = "a list of decode heads (a cascade)" if isinstance((m or {}).get("decode_head"), list) \
            else "no decode_head"
        raise ValueError(f"model config {source} has {what}: ddep needs an encoder-decoder "
                         f"segmentor (model = dict(backbone=..., [neck=...,] decode_head=dict(...)))")
    if m.get("type") not in SEGMENTOR_TYPES:
        raise ValueError(f"model config {source}: model type {m.get('type')!r} is not an "
                         f"encoder-decoder segmentor ({', '.join(SEGMENTOR_TYPES)})")
    return m


def missing_package(source: str, error: ImportError) -> str:
    """One line for a model config whose ``custom_imports`` fail: the package, and how to
    install it (at ddep's pin where ddep has it as an extra, pyproject.toml)."""
    import importlib.util
    import tomllib

    failed = error  # mmengine wraps the import's own error twice: the innermost names the module
    while failed.__cause__ or failed.__context__:
        failed = failed.__cause__ or failed.__context__
    module = getattr(failed, "name", None)
    if not module:
        return f"model config {source}: its custom_imports fail: {str(error).splitlines()[0]}"
    package = module.split(".")[0]
    if importlib.util.find_spec(package) is not None:  # installed, but broken
        return f"model config {source}: its custom_imports fail: {failed}"
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"  # the checkout's pins
    extras = (tomllib.loads(pyproject.read_text())["project"].get("optional-dependencies", {})
              if pyproject.is_file() else {})
    pins = [pin for deps in extras.values() for pin in deps if pin.split("==")[0] == package]
    how = (f"pip install '{pins[0]}' (ddep's pinned extra; or DDEP_EXTRAS={package} bash install.sh)"
           if pins else f"pip install {package}")
    return (f"model config {source} needs the package {package} (its custom_imports), which is "
            f"not installed: {how}")


# mmseg's segmentor and ddep's (which also loads pretrained weights, see segmentor_cfg)
SEGMENTOR_TYPES = ("EncoderDecoder", "PretrainableSegmentor", "TransUNetSegmentor")
# The pixel space of every model: images in [-1, 1] (mean = std = 127.5, RGB), where the noise
# (ddep.noise) is defined and where timm's R50-ViT-B/16 in21k weights were trained.
PIXELS = dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], bgr_to_rgb=True, pad_val=0,
              seg_pad_val=255)


def _plain_bn(cfg: object) -> object:
    """``cfg`` with every SyncBN as BN (mmseg's configs assume GPUs; the job picks SyncBN under
    DDP on GPUs for the decoder, see ddep.train.jobs)."""
    if isinstance(cfg, dict):
        return {k: ("BN" if k == "type" and v == "SyncBN" else _plain_bn(v)) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [_plain_bn(v) for v in cfg]
    return cfg


def _without_checkpoints(cfg: object) -> object:
    """``cfg`` with every ``init_cfg=dict(type='Pretrained', ...)`` at any depth as None (a
    backbone inside a backbone, BiSeNetV1's ``backbone_cfg``, names its own checkpoint)."""
    if isinstance(cfg, dict):
        init = cfg.get("init_cfg")
        if isinstance(init, dict) and init.get("type") == "Pretrained":
            cfg = dict(cfg, init_cfg=None)
        return {k: _without_checkpoints(v) for k, v in cfg.items()}
    return cfg


def _drop_class_weights(head: dict, num_classes: int) -> None:
    """A loss's ``class_weight`` of another class count (the frequencies of the dataset the
    config was made for, e.g. CGNet's 19 Cityscapes weights) does not fit: dropped, so every
    class weighs the same."""
    losses = head.get("loss_decode")
    for loss in losses if isinstance(losses, list) else [losses] if isinstance(losses, dict) else []:
        weights = loss.get("class_weight")
        if isinstance(weights, (list, tuple)) and len(weights) != num_classes:
            loss.pop("class_weight")


def dataset_file(dataset: str) -> Path:
    """``_base_/datasets/{dataset}.py``."""
    return _base_file("datasets", dataset)


def dataset_config(dataset: str, definition: dict | None = None) -> Config:
    """A dataset's config: ddep's file of its name; or, for a dataset that a sweep entry defines
    (its :data:`ddep.data.table.DEFINITION_KEYS`), its mmseg dataset config (``config:``), or
    mmseg's img_dir/ann_dir layout for its ``type:`` (``_base_/own_dataset.py``), with the
    entry's type, split folders, suffixes, classes, palette and ignore index, named
    ``dataset``, evaluated by mIoU (ddep's per-class IoU metric)."""
    if not definition:
        return Config.fromfile(str(dataset_file(dataset)))
    from ddep.data.table import DATASET_DEFS, dataset_def, dataset_source_config
    d = dataset_def(dataset, definition)
    source = definition.get("config")
    if source in DATASET_DEFS:
        cfg = Config.fromfile(str(dataset_file(source)))
    elif source:
        cfg = Config(copy.deepcopy(dataset_source_config(source).to_dict()))
    else:
        cfg = Config.fromfile(str(OWN_DATASET))
    classes = definition.get("classes")
    metainfo = {}
    if isinstance(classes, list):
        metainfo = dict(classes=tuple(classes))
        if definition.get("palette"):
            metainfo["palette"] = [list(c) for c in definition["palette"]]
        num_classes = len(classes)
    elif "num_classes" in cfg:
        num_classes = cfg.num_classes
    else:  # "from_dataset" (or not given): the mmseg dataset class's own classes
        from mmseg.registry import DATASETS
        from mmseg.utils import register_all_modules
        register_all_modules(init_default_scope=False)
        num_classes = len(DATASETS.get(d.type).METAINFO["classes"])
    for split in ("train", "val"):
        s = d.splits[split]
        changes = dict(type=d.type, img_suffix=d.img_suffix, seg_map_suffix=d.seg_map_suffix,
                       reduce_zero_label=d.reduce_zero_label,
                       data_prefix=dict(img_path=s.img_path, seg_map_path=s.seg_map_path),
                       **(dict(ann_file=s.ann_file) if s.ann_file else {}),
                       **(dict(metainfo=metainfo) if metainfo else {}))
        cfg.merge_from_dict({f"{split}_dataloader": dict(dataset=changes)})
    cfg.merge_from_dict(dict(dataset_name=dataset, num_classes=num_classes,
                             val_evaluator=dict(type="PerClassIoUMetric", iou_metrics=["mIoU"]),
                             **({"ignore_index": definition["ignore_index"]}
                                if "ignore_index" in definition else {})))
    cfg.test_dataloader, cfg.test_evaluator = cfg.val_dataloader, cfg.val_evaluator
    return cfg


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


@functools.lru_cache  # the workflow asks once per job: read each dataset's files once
def schedule_files(dataset: str, stage: str) -> tuple[Path, ...]:
    """The schedule file a job of ``stage`` trains by and every ``_base_`` file it builds on: what
    its result depends on (the workflow's rules take them as inputs, so an edit reruns the jobs)."""
    files, todo = [], [schedule_file(dataset, stage)]
    while todo:
        path = todo.pop(0)
        files.append(path)
        todo += [(path.parent / base).resolve() for base in _base_files(path) if "::" not in base]
    return tuple(files)


def _base_files(path: Path) -> list[str]:
    """A config file's ``_base_`` entries, read without running the file."""
    import ast
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_base_" for t in node.targets):
            bases = ast.literal_eval(node.value)
            return [bases] if isinstance(bases, str) else list(bases)
    return []


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


def segmentor_cfg(model: str | Model, num_classes: int, img_size: int | Sequence[int],
                  test_stride: int | Sequence[int] | None = None, pretrained: str | None = None,
                  init_from: str | None = None, norm_cfg: dict | None = None,
                  ignore_index: int = 255) -> dict:
    """A model's segmentor (``PretrainableSegmentor``, mmseg's EncoderDecoder that loads
    weights) for ``num_classes`` (its decode head and any auxiliary heads). ``pretrained``:
    supervised encoder weights (21K / DDeP); ``init_from``: a denoising checkpoint (all but the
    final projection). The config's own backbone checkpoint (``init_cfg``/``pretrained``) is
    dropped: the job names the encoder weights (the model's or the dataset's ``encoder_weights``).

    Inference slides a window of the training crop (``img_size``) with ``test_stride`` over the
    test image, as mmseg's configs do (``test_stride=None``: one pass over the whole image)."""
    m = _plain_bn(load_model(model))
    size = _pair(img_size)
    m.pop("pretrained", None)
    m["backbone"] = _without_checkpoints(m["backbone"])
    if "img_size" in m["backbone"]:  # a position embedding's (or relative bias') grid: the crop's
        m["backbone"]["img_size"] = size
    m.update(type="PretrainableSegmentor", init_from=init_from, encoder_weights=pretrained,
             data_preprocessor=dict(m.get("data_preprocessor") or {"type": "SegDataPreProcessor"},
                                    **PIXELS, size=size))
    aux = m.get("auxiliary_head") or []
    for head in [m["decode_head"], *(aux if isinstance(aux, list) else [aux])]:
        head.update(num_classes=num_classes, ignore_index=ignore_index)
        head.pop("out_channels", None)
        _drop_class_weights(head, num_classes)
    if norm_cfg is not None:
        m["decode_head"]["norm_cfg"] = norm_cfg
    if test_stride is not None:
        m["test_cfg"] = dict(mode="slide", crop_size=size, stride=_pair(test_stride))
    return m


def denoiser_cfg(model: str | Model, img_size: int | Sequence[int], noise: dict | None = None,
                 freeze_encoder: bool = False, noise_conditioning: bool = False,
                 pretrained: str | None = None, norm_cfg: dict | None = None) -> dict:
    """The denoising-pretraining model (``DenoisingPretrainer``) of a model: DeP
    (``freeze_encoder=False``) or DDeP. Its backbone, neck and decode head are the segmentor's
    (same names, so all but the final projection transfer); auxiliary heads are dropped (they
    only shape the segmentation loss); the head predicts noise at the input's resolution
    (see :class:`ddep.models.DenoisingPretrainer`). It has no loss config and is never tested."""
    seg = segmentor_cfg(model, 3, img_size, norm_cfg=norm_cfg)
    head = {k: v for k, v in seg["decode_head"].items() if k not in ("ignore_index", "loss_decode")}
    preprocessor = {k: v for k, v in seg["data_preprocessor"].items() if k != "test_cfg"}
    return dict(type="DenoisingPretrainer", noise=noise or {}, freeze_encoder=freeze_encoder,
                noise_conditioning=noise_conditioning, encoder_weights=pretrained,
                data_preprocessor=preprocessor, backbone=seg["backbone"],
                **({"neck": seg["neck"]} if seg.get("neck") else {}), decode_head=head)


def _with_crop(pipeline: list, crop: tuple[int, int]) -> list:
    return [dict(step, crop_size=crop) if step["type"] == "RandomCrop" else step
            for step in pipeline]


def finetune_config(dataset: str, model: str | Model, data_root: str | os.PathLike,
                    crop_size: Sequence[int] | None = None,
                    definition: dict | None = None, eval_split: str = "val",
                    eval_list: str | os.PathLike | None = None) -> Config:
    """Runtime + dataset at ``data_root`` (:func:`dataset_config`) + the model's segmentor for
    its classes, trained on ``crop_size`` (default: the dataset file's) and tested with sliding
    windows of it, on the dataset's ``eval_split`` (``val``; the tuning stage's development
    split, ``dev``: the dataset's development scenes, or ``eval_list``, its development slice of
    the train images)."""
    cfg = Config.fromfile(str(RUNTIME))
    cfg.merge_from_dict(dataset_config(dataset, definition).to_dict())
    crop = _pair(crop_size or _dataset_crop(cfg, dataset))
    train_pipeline = _with_crop(cfg.train_dataloader.dataset.pipeline, crop)
    val = dict(data_root=str(data_root))
    if eval_list or eval_split != "val":
        from ddep.data.table import dataset_def
        splits = dataset_def(dataset, definition).splits
    if eval_list:  # a list of train images (mmseg's ann_file)
        val.update(ann_file=os.path.abspath(eval_list), data_prefix=dict(
            img_path=splits["train"].img_path, seg_map_path=splits["train"].seg_map_path))
    elif eval_split != "val":
        if eval_split not in splits:
            raise ValueError(f"dataset {dataset!r} has no {eval_split!r} split (it has: {', '.join(splits)})")
        val["data_prefix"] = dict(img_path=splits[eval_split].img_path,
                                  seg_map_path=splits[eval_split].seg_map_path)
    cfg.merge_from_dict(dict(
        data_root=str(data_root), crop_size=crop,
        train_dataloader=dict(dataset=dict(data_root=str(data_root), pipeline=train_pipeline)),
        val_dataloader=dict(dataset=val)))
    cfg.model = segmentor_cfg(model, cfg.num_classes, crop, test_stride=slide_stride(crop),
                              ignore_index=cfg.get("ignore_index", 255))
    return cfg


def _dataset_crop(cfg: Config, dataset: str):
    if "crop_size" not in cfg:
        raise ValueError(f"datasets.{dataset}: its dataset config sets no crop_size: give the "
                         f"entry a `crop_size: [h, w]`")
    return cfg.crop_size


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


def denoise_config(dataset: str, model: str | Model, unlabelled_dir: str | os.PathLike,
                   crop_size: Sequence[int] | None = None,
                   image_crop: Sequence[int] | None = None,
                   definition: dict | None = None) -> Config:
    """``denoising_pretraining.py`` + the model's denoiser + every image under
    ``unlabelled_dir``, with the dataset's training geometry (crop, random resize, flip).

    The model is built for ``crop_size`` (default: the dataset file's), the fine-tuning crop,
    so its position embedding transfers as it is. ``image_crop`` (default: ``crop_size``)
    crops the unlabelled images instead, for images of another shape than the target's (the
    built-in source set's 64 x 64, ImageNet's 224 x 224): the encoder then resamples its
    position embedding on the fly, as it does at fine-tuning for the supervised encoder."""
    data = dataset_config(dataset, definition)
    crop = _pair(crop_size or _dataset_crop(data, dataset))
    images = _pair(image_crop or crop)
    pipeline = _with_crop(unlabelled_pipeline(data.train_dataloader.dataset.pipeline), images)
    denoiser = denoiser_cfg(model, crop)
    denoiser["data_preprocessor"]["size"] = images
    cfg = Config.fromfile(str(DENOISING))
    cfg.merge_from_dict(dict(
        dataset_name=data.dataset_name, model=denoiser,
        train_dataloader=dict(dataset=dict(data_root=str(unlabelled_dir), pipeline=pipeline))))
    return cfg


def copy_val_to_test(cfg: Config) -> None:
    """Test as validated (mmseg's ``test_dataloader = val_dataloader``, after the job's changes)."""
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    cfg.test_evaluator = copy.deepcopy(cfg.val_evaluator)
