"""FLOPs of one training step of any model, counted on the CPU: the fine-tune, DeP and DDeP
steps as the jobs build them (``ddep.configs.segmentor_cfg`` / ``denoiser_cfg``, AdamW through
mmengine's optimizer wrapper), forward + backward, by ``torch.utils.flop_counter``.

``benchmarks/denoise_step.py`` writes these counts to ``benchmarks/step_cost.csv``;
``ddep.estimate`` counts a model missing there at estimate time (and caches it), to price it on
a GPU where it was never measured."""
from __future__ import annotations

from collections.abc import Callable

import torch
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

import ddep.models  # noqa: F401  (TransUNet, DenoisingPretrainer, the optimizer constructor)
from ddep.configs import denoiser_cfg, segmentor_cfg
from ddep.sweep import PRESET_ARMS, Model

STEPS = ("finetune", "dep", "ddep")
# The fine-tune's classes when counting (Cityscapes'): only the final projection depends on it.
COUNT_CLASSES = 19


def counted_flops(step: Callable[[], object]) -> int:
    """FLOPs of one call of ``step`` (forward + backward), counted by PyTorch's flop counter."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def fake_batch(n: int, size: tuple[int, int], classes: int | None = None, image_classes: int | None = None,
               seed: int = 0) -> dict:
    """A ``model.train_step`` batch of `n` random uint8 images of `size` as mmseg's loaders pack it; with `classes`,
    random segmentation labels; with `image_classes`, each sample's class as ``gt_label`` (the classifier's)."""
    g = torch.Generator().manual_seed(seed)
    samples = [SegDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size,
                                           **({"gt_label": i % image_classes} if image_classes else {})))
               for i in range(n)]
    for s in samples if classes else []:
        s.gt_sem_seg = PixelData(data=torch.randint(0, classes, (1, *size), generator=g))
    return dict(inputs=[torch.randint(0, 256, (3, *size), dtype=torch.uint8, generator=g) for _ in range(n)],
                data_samples=samples)


def build_step(step: str, model: str | Model, size: tuple[int, int], batch: int = 1,
               classes: int = COUNT_CLASSES) -> tuple[torch.nn.Module, Callable[[], torch.Tensor]]:
    """(model, one training step) of ``step`` (finetune, dep or ddep) as the job builds them,
    from the same seed."""
    register_all_modules(init_default_scope=True)
    torch.manual_seed(0)
    data = fake_batch(batch, tuple(size), classes if step == "finetune" else None)
    optimizer = dict(optimizer=dict(type="AdamW", lr=1e-4, weight_decay=0.05))
    if step == "finetune":
        net = MODELS.build(segmentor_cfg(model, classes, size))
    else:
        net = MODELS.build(denoiser_cfg(model, size, noise=dict(sigma=0.2),
                                        freeze_encoder=PRESET_ARMS[step].frozen_encoder))
        optimizer["constructor"] = "TrainableOnlyOptimWrapperConstructor"  # as the job's config
    net.train()
    wrapper = build_optim_wrapper(net, optimizer)
    return net, lambda: net.train_step(data, wrapper)["loss"].detach()


def step_gflops(model: str | Model, size: tuple[int, int], batch: int = 2) -> dict[str, float]:
    """GFLOP per image of each step (finetune, dep, ddep) of ``model`` at crop ``size``; a batch
    of 2, as BatchNorm after a global pooling (DeepLabV3+'s ASPP) cannot train on one image."""
    gflops = {}
    for step in STEPS:
        _, run = build_step(step, model, size, batch)
        gflops[step] = counted_flops(run) / batch / 1e9  # the first step: as many FLOPs as any
    return gflops
