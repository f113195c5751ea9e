"""Registered mmengine/mmseg pieces used by the training jobs."""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from mmseg.evaluation import IoUMetric
from mmseg.registry import HOOKS, METRICS, OPTIM_WRAPPERS


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop the job as soon as the loss is NaN/inf (nothing downstream may use such a model)."""

    priority = "VERY_HIGH"

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        loss = (outputs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"loss is {float(loss)} at iteration {runner.iter + 1}; lower the learning rate "
                f"or check the data (work dir: {runner.work_dir})")


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    """mmseg's IoUMetric (aAcc, mIoU, mAcc, in %) plus ``IoU.<class>`` for every class."""

    def compute_metrics(self, results: list) -> dict[str, float]:
        metrics = super().compute_metrics(results)
        intersect, union = (sum(part) for part in list(zip(*results))[:2])
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = (intersect.double() / union.double()).numpy()
        for name, value in zip(self.dataset_meta["classes"], iou):
            metrics[f"IoU.{name}"] = round(float(value) * 100, 2)  # nan: class absent
        return metrics


@OPTIM_WRAPPERS.register_module()
class CPUBF16OptimWrapper(OptimWrapper):
    """bf16 autocast for training on CPUs (mmengine's AmpOptimWrapper is for GPUs only). bf16
    has fp32's exponent range, so the loss needs no scaling."""

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), torch.autocast("cpu", dtype=torch.bfloat16):
            yield
