"""The training jobs. Each takes a config composed from ``ddep/configs`` (dataset x model),
adds its run's values (arm, schedule file, seed, split, initial weights, work dir), trains it with
an mmengine ``Runner`` (resuming from its work dir) and writes its output and the resolved
config beside it, atomically."""
from __future__ import annotations

import copy
import gc
import hashlib
import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from ddep.configs import RUNTIME, segmentor_cfg
from ddep.configs.compose import copy_val_to_test
from ddep.data.checks import checked_pipeline, count_split
from ddep.data.table import find_images
from ddep.io import atomic_write_text, ensure_writable, write_json
from ddep.noise import NoiseConfig
from ddep.run_file import check_run
from ddep.checkpoints import CheckpointError
from ddep.sweep import PRESET_ARMS, Model, model_of_run, preset_arm


@dataclass
class JobOptions:
    """What every job shares: where it works, its seed, model and hardware settings."""
    work_dir: Path
    model: Model = field(default_factory=lambda: Model("transunet_tiny"))
    seed: int = 0
    amp: str = "none"          # none | bf16 | fp16 (CUDA autocast)
    launcher: str = "none"     # none | pytorch (torchrun) | slurm
    pin_memory: bool = False
    channels_last: bool = False  # ddep.models.transunet.apply_fast_path
    compile: bool = False
    keep_checkpoints: bool = False  # else a finished job deletes its resume checkpoints
    cfg_options: dict = field(default_factory=dict)


def apply_run(cfg: Config, opts: JobOptions, sched: dict) -> Config:
    """``cfg`` with one run's values: its schedule (:func:`ddep.configs.schedule_config`),
    where it works, its seed and hardware, then ``opts.cfg_options``. A config with a
    ``val_dataloader`` also gets mmseg's val and test loops (tested as validated), which
    validate once, after training (runner.val() in the job, or mmseg's tools/test.py)."""
    workers = {k: sched["train_dataloader"][k] for k in ("num_workers", "persistent_workers")}
    loader = dict(workers, pin_memory=opts.pin_memory)
    cfg.merge_from_dict(sched)
    cfg.merge_from_dict(dict(
        work_dir=str(opts.work_dir), launcher=opts.launcher, randomness=dict(seed=opts.seed),
        train_dataloader=dict(pin_memory=opts.pin_memory)))
    if opts.amp != "none":
        cfg.merge_from_dict(dict(optim_wrapper=amp_optim_wrapper(opts.amp)))
    if "val_dataloader" in cfg:
        cfg.merge_from_dict(dict(val_dataloader=loader, val_cfg=dict(type="ValLoop"),
                                 test_cfg=dict(type="TestLoop")))
    if opts.launcher != "none" and not _cuda():
        # DDP on CPU (gloo): tests and CPU-only clusters. mmengine's defaults assume one GPU
        # per rank (NCCL, device_ids=[LOCAL_RANK]); _train initialises the process group.
        cfg.merge_from_dict(dict(
            env_cfg=dict(dist_cfg=dict(backend="gloo")),
            model_wrapper_cfg=dict(type="MMDistributedDataParallel", device_ids=None,
                                   broadcast_buffers=False)))
    fast_path = {k: True for k in ("channels_last", "compile") if getattr(opts, k)}
    if fast_path:  # only when set: the default run's configs (and hashes) stay as they were
        cfg.merge_from_dict(dict(model=dict(fast_path=fast_path)))
    if opts.cfg_options:
        cfg.merge_from_dict(opts.cfg_options)
    if "val_dataloader" in cfg:
        copy_val_to_test(cfg)
    return cfg


def amp_optim_wrapper(amp: str) -> dict:
    """The optim_wrapper keys that train in ``amp`` ("bf16" or "fp16") on this machine: mmengine's
    AmpOptimWrapper on a GPU, ddep's CPUBF16OptimWrapper for bf16 on a CPU."""
    if _cuda():
        return dict(type="AmpOptimWrapper", dtype="bfloat16" if amp == "bf16" else "float16")
    if amp == "bf16":
        return dict(type="CPUBF16OptimWrapper")
    raise ValueError(f"--amp {amp} needs a GPU; on a CPU use --amp bf16 or none")


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


def config_hash(cfg: Config) -> str:
    """Hash of the resolved config, without where it ran: no work dir or launcher, and every
    absolute path inside the current directory (the checkout, where the workflow runs) made
    relative to it, so two checkouts of one commit hash alike."""
    here = Path.cwd()

    def relative(v):
        if isinstance(v, dict):
            return {k: relative(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [relative(x) for x in v]
        if isinstance(v, str) and os.path.isabs(v) and Path(v).is_relative_to(here):
            return Path(v).relative_to(here).as_posix()
        return v

    d = cfg.to_dict()
    for key in ("work_dir", "launcher"):
        d.pop(key, None)
    d = relative(d)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def save_config(cfg: Config, out: str | os.PathLike) -> Path:
    """Write the run's resolved config beside its output ``out`` (same stem, ``.py``), where it
    trains and tests with mmseg's own ``tools/train.py`` and ``tools/test.py``."""
    return atomic_write_text(Path(out).with_suffix(".py"), cfg.pretty_text)


def provenance() -> dict:
    import mmcv
    import mmengine
    import mmseg
    import timm
    import torch
    from mmengine.dist import get_world_size

    import ddep
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(ddep.__file__).parent,
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return dict(git_commit=commit or "unknown", world_size=get_world_size(), versions=dict(
        ddep=ddep.__version__, torch=str(torch.__version__), mmcv=mmcv.__version__,
        mmengine=mmengine.__version__, mmseg=mmseg.__version__, timm=timm.__version__))


def _train(cfg: Config, out: str | os.PathLike) -> Runner:
    ensure_writable(cfg.work_dir, Path(out).parent)  # fail now, not after training
    if cfg.launcher == "pytorch" and not _cuda():
        import torch.distributed as dist
        if not dist.is_initialized():  # mmengine's init_dist calls torch.cuda.set_device
            dist.init_process_group(backend="gloo")
    # What exists now (torch, mmengine and mmseg, the config) lives as long as the job: frozen,
    # it is left out of every garbage collection, mmengine's gc.collect() after building each
    # dataset included (about 0.4 s each on a 2-core CPU). A process's next run first frees
    # what the last one left (its runner and model, in reference cycles).
    if gc.get_freeze_count():
        gc.unfreeze()
        gc.collect()
    gc.freeze()
    # mmengine keeps its logger, message hub and visualizer in process-wide registries by name
    # (mmseg names its visualizer "visualizer"): a name per work dir keeps each run of a process
    # that trains several (a cell's seeds, `ddep finetune --seed A B`) writing to its own.
    named = copy.deepcopy(cfg)
    name = Path(cfg.work_dir).name
    named.merge_from_dict(dict(experiment_name=name, **(
        dict(visualizer=dict(name=name)) if "visualizer" in cfg else {})))
    runner = Runner.from_cfg(named)
    runner.train()
    return runner


def _finish(opts: JobOptions, out: Path) -> None:
    if not opts.keep_checkpoints:
        drop_checkpoints(opts.work_dir, out)


def drop_checkpoints(work_dir: str | os.PathLike, out: str | os.PathLike) -> None:
    """After the output ``out`` is written: drop the resume checkpoints in ``work_dir`` (an R50
    one with AdamW state is over 1 GB), keep the logs."""
    if not is_main_process():
        return
    for path in Path(work_dir).glob("iter_*.pth"):
        if path.resolve() != Path(out).resolve():
            path.unlink()
    (Path(work_dir) / "last_checkpoint").unlink(missing_ok=True)


def model_identity(opts: JobOptions) -> dict:
    """What a job's JSON says of its model: its name (the run identity's ``model``) and config."""
    return dict(model=opts.model.name, model_config=opts.model.config)


def _bare(model):
    return model.module if is_model_wrapper(model) else model


BATCH_NORMS = ("BN", "SyncBN", "BN2d")


def _default_norm(head_type: str) -> dict | None:
    """The norm a decode head's class builds when its config names none (a dict), or None."""
    import inspect

    from mmseg.registry import MODELS
    cls = MODELS.get(head_type)
    param = inspect.signature(cls.__init__).parameters.get("norm_cfg") if cls else None
    return param.default if param is not None and isinstance(param.default, dict) else None


def decoder_norm_cfg(head: dict, opts: JobOptions) -> dict | None:
    """The decode head's norm as the job trains it: the model's own kind (GroupNorm stays
    GroupNorm, LayerNorm stays LayerNorm, an explicit ``norm_cfg=None`` stays None); BatchNorm
    becomes SyncBN across GPUs under DDP and plain BN on one device or on CPUs (SyncBN needs
    CUDA). A head whose config names no norm keeps its class's default when that is not
    BatchNorm (Segmenter's LayerNorm), else gets BatchNorm, as ddep always gave it."""
    if "norm_cfg" in head and (head["norm_cfg"] is None or head["norm_cfg"].get("type") not in BATCH_NORMS):
        return None if head["norm_cfg"] is None else dict(head["norm_cfg"])
    own = None if "norm_cfg" in head else _default_norm(head["type"])
    if own is not None and own.get("type") not in BATCH_NORMS:
        return dict(own)
    sync = opts.launcher != "none" and _cuda()
    return dict(type="SyncBN" if sync else "BN", requires_grad=True)


def denoise_model_overrides(cfg: Config, noise: NoiseConfig, opts: JobOptions, freeze_encoder: bool,
                            encoder_weights: str | None = None,
                            noise_conditioning: bool = False) -> dict:
    """What a denoising job sets in its config's ``model`` (the model check builds the same)."""
    return dict(noise=asdict(noise), freeze_encoder=freeze_encoder, encoder_weights=encoder_weights,
                noise_conditioning=noise_conditioning,
                decode_head=dict(norm_cfg=decoder_norm_cfg(cfg.model.decode_head, opts)))


def finetune_model_overrides(cfg: Config, opts: JobOptions, init_from: str | None = None,
                             encoder_weights: str | None = None) -> dict:
    """What a fine-tune sets in its config's ``model`` (the model check builds the same)."""
    return dict(init_from=init_from, encoder_weights=encoder_weights,
                decode_head=dict(norm_cfg=decoder_norm_cfg(cfg.model.decode_head, opts)))


def classifier_cfg(model: Model, num_classes: int, grid: tuple[int, int],
                   size: tuple[int, int]) -> dict:
    """The supervised stand-in's model: ``model``'s backbone, built for the target's image
    ``grid`` (a TransUNet stores its position embedding there, where 21K and DDeP load it as
    it is, resampled on the fly to the source images' grid), classifying ``size`` images."""
    seg = segmentor_cfg(model, num_classes, grid)
    preprocessor = {k: v for k, v in seg["data_preprocessor"].items() if k != "test_cfg"}
    return dict(type="ImageClassifier", num_classes=num_classes,
                data_preprocessor=dict(preprocessor, size=size), backbone=seg["backbone"])


# --- supervised encoder (the built-in ImageNet-21k stand-in) -------------------------------

def pretrain_supervised(data_root: Path, out: Path, opts: JobOptions, sched: dict) -> dict:
    """Train the model's backbone as a single-label classifier on the built-in source set (the
    miniature's ImageNet, :mod:`ddep.data.source`) and save it (``.safetensors``) in the format
    the model's encoder loader reads (:func:`ddep.models.weights.encoder_state_dict`: timm's
    for the TransUNet), where 21K and DDeP load it. The source set knows nothing of the
    target's classes."""
    meta_path = Path(data_root) / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: generate the built-in dataset first "
                                f"(`ddep generate-builtin --root {data_root}`)")
    meta = json.loads(meta_path.read_text())
    if "source_classes" not in meta:
        raise FileNotFoundError(f"{data_root} has no source set (an older built-in layout): "
                                f"delete {meta_path} and generate it again")
    size = (meta["params"]["source_size"],) * 2
    classes = meta["source_classes"]
    grid = (meta["params"]["height"], meta["params"]["width"])
    model = classifier_cfg(opts.model, len(classes), grid, size)
    # ImageNet-style augmentation: a random crop of a slightly enlarged image, and flips
    augment = [dict(type="RandomResize", scale=size, ratio_range=(1.0, 1.4), keep_ratio=True),
               dict(type="RandomCrop", crop_size=size), dict(type="RandomFlip", prob=0.5)]
    pack = dict(type="PackSegInputs", meta_keys=("img_path", "ori_shape", "img_shape", "gt_label"))
    data = [dict(type="ImageFolderDataset", metainfo=dict(classes=classes),
                 data_prefix=dict(img_path=str(Path(data_root) / meta["source_dirs"][split])),
                 pipeline=checked_pipeline([dict(type="LoadImageFromFile"), *steps, pack]))
            for split, steps in (("train", augment), ("val", []))]
    cfg = Config.fromfile(str(RUNTIME))
    cfg.merge_from_dict(dict(
        model=model,
        train_dataloader=dict(sampler=dict(type="InfiniteSampler", shuffle=True), dataset=data[0]),
        val_dataloader=dict(batch_size=1, sampler=dict(type="DefaultSampler", shuffle=False),
                            dataset=data[1]),
        val_evaluator=dict(type="TopOneAccuracy", num_classes=len(classes))))
    cfg = apply_run(cfg, opts, sched)
    start = time.time()
    runner = _train(cfg, out)
    metrics = runner.val()
    result = dict(stage="supervised", **model_identity(opts), iterations=runner.iter,
                  source=str(Path(data_root) / meta["source_dirs"]["train"]),
                  source_classes=len(classes),
                  wall_time_s=round(time.time() - start, 2), config_hash=config_hash(cfg),
                  **{k.split("/")[-1]: float(v) for k, v in metrics.items()}, **provenance())
    if is_main_process():
        from ddep.models.weights import encoder_state_dict, save_atomic
        save_atomic(encoder_state_dict(_bare(runner.model).backbone), out)
        write_json(Path(out).with_suffix(".json"), result)
        save_config(cfg, out)
    _finish(opts, out)
    return result


# --- denoising pretraining (DeP / DDeP) ---------------------------------------------------

def heldout_loss(model, cfg: Config, folder: Path, seed: int, batch_size: int = 16) -> dict:
    """The denoising loss of a trained denoiser on every image under ``folder`` (images it did not
    train on), resized to its training crop, at its own noise setting; and the loss of predicting
    zero on the same corruptions (the reference: 1 for the eps target). Each batch's noise comes
    from its own stream of (``seed``, batch), so two denoisers of one setting see the same noise."""
    import torch
    if not Path(folder).is_dir() or next(find_images(folder), None) is None:
        raise FileNotFoundError(f"--heldout {folder}: no image files there (the images the denoiser's "
                                f"held-out loss is measured on)")
    h, w = model.data_preprocessor.size
    data = dict(cfg.train_dataloader.dataset, data_root=str(folder), pipeline=[
        dict(type="LoadImageFromFile"), dict(type="Resize", scale=(w, h), keep_ratio=False),
        dict(type="PackSegInputs")])
    loader = Runner.build_dataloader(dict(batch_size=batch_size, num_workers=0, dataset=data,
                                          sampler=dict(type="DefaultSampler", shuffle=False)))
    model.eval()
    loss = zero = n = 0.0
    with torch.no_grad():
        for i, batch in enumerate(loader):
            inputs = model.data_preprocessor(batch, False)["inputs"]
            batch_loss, batch_zero = model.heldout_losses(inputs, seed=seed * 1_000_003 + i)
            loss, zero, n = loss + batch_loss * len(inputs), zero + batch_zero * len(inputs), n + len(inputs)
    return dict(heldout_loss=round(loss / n, 6), heldout_zero_loss=round(zero / n, 6),
                heldout_images=int(n), heldout=str(folder))


def pretrain_denoise(cfg: Config, arm: str, noise: NoiseConfig, out: Path, opts: JobOptions,
                     sched: dict, encoder_weights: str | None = None,
                     noise_conditioning: bool = False, freeze_encoder: bool | None = None,
                     heldout: Path | None = None) -> dict:
    """Pretrain ``cfg`` (from :func:`ddep.configs.denoise_config`) with the denoising objective
    and write a weights-only checkpoint whose meta records the arm and noise setting
    (fine-tuning reads its identity from there). ``freeze_encoder`` None: as the preset ``arm``
    names (DDeP frozen), any other arm not. With ``heldout``, a folder of images it does not
    train on, the JSON also records its held-out loss (:func:`heldout_loss`)."""
    preset = preset_arm(arm)
    if arm in PRESET_ARMS and not preset.denoised:
        raise ValueError(f"arm {arm!r} has no denoising pretraining (its decoder starts random)")
    freeze = preset.frozen_encoder if freeze_encoder is None else freeze_encoder
    if freeze and not encoder_weights:
        raise ValueError(f"arm {arm!r} freezes a pretrained encoder: pass --encoder-weights "
                         "(the checkpoint from `ddep pretrain-supervised`, or the model's own)")
    if arm in PRESET_ARMS and not preset.pretrained_encoder and encoder_weights:
        raise ValueError(f"arm {arm!r} pretrains the whole U-Net from random init: "
                         "drop --encoder-weights (or use arm 'ddep')")
    dataset = cfg.train_dataloader.dataset
    unlabelled_dir = Path(dataset.data_root)
    if not unlabelled_dir.is_dir():
        raise FileNotFoundError(f"unlabelled image folder not found: {unlabelled_dir}")
    dataset.pipeline = checked_pipeline(dataset.pipeline)
    cfg.merge_from_dict(dict(model=denoise_model_overrides(
        cfg, noise, opts, freeze, encoder_weights, noise_conditioning)))
    cfg = apply_run(cfg, opts, sched)
    start = time.time()
    runner = _train(cfg, out)
    loss = runner.message_hub.log_scalars.get("train/loss")
    meta = dict(stage="denoise", arm=arm, dataset=cfg.dataset_name, sigma=noise.label,
                formulation=noise.formulation, target=noise.target, loss=noise.loss,
                noise_conditioning=noise_conditioning, **model_identity(opts),
                iterations=runner.iter, final_loss=float(loss.mean(50)) if loss else None,
                wall_time_s=round(time.time() - start, 2), config_hash=config_hash(cfg),
                encoder_weights=str(encoder_weights) if encoder_weights else None,
                unlabelled=str(unlabelled_dir), **provenance())
    if heldout and is_main_process():
        meta |= heldout_loss(_bare(runner.model), cfg, Path(heldout), opts.seed)
    if is_main_process():
        from ddep.models.weights import export_weights
        export_weights(_bare(runner.model), out, meta=meta)
        write_json(Path(out).with_suffix(".json"), meta)  # read by `ddep aggregate --pretrainings`
        save_config(cfg, out)
    _finish(opts, out)
    return meta


# --- fine-tuning + evaluation -------------------------------------------------------------
def read_checkpoint_meta(path: str | os.PathLike) -> dict:
    import pickle

    import torch
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise CheckpointError(f"{path} is not a weights checkpoint written by `ddep "
                              f"pretrain-denoise` ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    return ckpt.get("meta", {}) if isinstance(ckpt, dict) else {}


def finetune_setting(cfg: Config) -> dict:
    """The fine-tune setting a resolved config trains with, in the tuning grid's keys
    (:data:`ddep.tuning.TUNABLE`): what the run JSON records, read back from the config itself."""
    wrapper = cfg.optim_wrapper
    mult = (wrapper.get("paramwise_cfg") or {}).get("custom_keys", {}).get("backbone", {}).get("lr_mult", 1.0)
    return dict(lr=float(wrapper.optimizer.lr), encoder_lr_mult=float(mult),
                iters=int(cfg.train_cfg.max_iters), batch_size=int(cfg.train_dataloader.batch_size))


def finetune(cfg: Config, arm: str, split_file: Path, label_fraction: str, out: Path,
             opts: JobOptions, sched: dict, init_from: str | None = None,
             encoder_weights: str | None = None, setting_from: dict | None = None,
             record: dict | None = None) -> dict:
    """Fine-tune ``cfg`` (from :func:`ddep.configs.finetune_config`) on the labelled split
    ``split_file``, evaluate on its val split (the full val split, or the development split
    for the tuning stage) with mmseg's IoU metric (the model's sliding windows; the prediction
    is compared with the label map at its original resolution) and write the run's JSON
    (identity + metrics + provenance, the fine-tune setting and ``setting_from``, where it came
    from, and ``record``'s fields) and its config."""
    # A preset needs what its record says; an arm of the user's, whatever the sweep passes.
    preset = PRESET_ARMS.get(arm)
    needs = {"init_from": preset.denoised, "encoder_weights": preset.pretrained_encoder and not preset.denoised} \
        if preset else {"init_from": bool(init_from), "encoder_weights": bool(encoder_weights)}
    what = {"init_from": "a denoising checkpoint", "encoder_weights": "a timm-format supervised encoder"}
    if init_from and encoder_weights:
        raise ValueError("pass --init-from (a denoising checkpoint, encoder included) or "
                         "--encoder-weights (an encoder alone), not both")
    for name, value in (("init_from", init_from), ("encoder_weights", encoder_weights)):
        flag = "--" + name.replace("_", "-")
        if needs[name] and not value:
            raise ValueError(f"arm {arm!r} needs {flag} ({what[name]})")
        if not needs[name] and value:
            raise ValueError(f"arm {arm!r} takes no {flag}")
    split_file = Path(split_file)
    if not split_file.is_file():
        raise FileNotFoundError(f"split file not found: {split_file} (make it with `ddep split`)")
    n_labelled = count_split(split_file)
    pre = read_checkpoint_meta(init_from) if init_from else {}
    # an arm of the user's may share a preset's pretraining (their records agree); a preset never
    if pre and arm in PRESET_ARMS and pre.get("arm") not in (None, arm):
        raise ValueError(f"{init_from} was pretrained with arm {pre.get('arm')!r}, not {arm!r}")
    if pre and model_of_run(pre) != opts.model.name:
        raise CheckpointError(f"{init_from} was pretrained with model {model_of_run(pre)!r}, but this "
                              f"fine-tune builds model {opts.model.name!r}: pass its --model, or "
                              f"a checkpoint pretrained with {opts.model.name!r}")
    num_classes = cfg.model.decode_head.num_classes
    train, val = cfg.train_dataloader.dataset, cfg.val_dataloader.dataset
    train.ann_file = os.path.abspath(split_file)
    ignore_index = cfg.model.decode_head.get("ignore_index", 255)
    train.pipeline = checked_pipeline(train.pipeline, num_classes, ignore_index)
    val.pipeline = checked_pipeline(val.pipeline, num_classes, ignore_index)
    cfg.merge_from_dict(dict(model=finetune_model_overrides(cfg, opts, init_from, encoder_weights)))
    cfg = apply_run(cfg, opts, sched)
    start = time.time()
    runner = _train(cfg, out)
    loss = runner.message_hub.log_scalars.get("train/loss")
    metrics = runner.val()
    per_class = {k[len("IoU."):]: v for k, v in metrics.items() if k.startswith("IoU.")}
    result = dict(
        dataset=cfg.dataset_name, label_fraction=str(label_fraction), n_labelled=n_labelled, arm=arm,
        sigma=pre.get("sigma", "-"), formulation=pre.get("formulation", "-"),
        target=pre.get("target", "-"), noise_conditioning=pre.get("noise_conditioning", False),
        seed=opts.seed, **model_identity(opts),
        **{k: round(float(metrics[k]), 2) for k in ("mIoU", "aAcc", "mAcc")},
        per_class_iou=per_class, iterations=runner.iter, wall_time_s=round(time.time() - start, 2),
        config_hash=config_hash(cfg), split_file=str(split_file),
        pretrained=str(init_from or encoder_weights or ""),
        finetune_setting=dict(finetune_setting(cfg), **(setting_from or {})),
        # nested, so runs.csv keeps its columns: the tuning rule reads it (ddep.tuning.failed)
        training=dict(final_loss=float(loss.current()) if loss else None),
        **(record or {}), **provenance())
    check_run(result, out)  # the contract `ddep aggregate` reads it by
    if is_main_process():
        write_json(out, result)
        save_config(cfg, out)
    _finish(opts, out)
    return result
