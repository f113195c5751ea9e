"""Shared by the benchmark scripts (imported from their folder): the time of a step, by torch.utils.benchmark, and
the CPU's name. Their fake batches are ``ddep.step_flops.fake_batch``, on which the FLOP counter builds its steps."""
from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.benchmark import Timer


def mean_step_s(step: Callable[[], object], warmup: int, iters: int) -> float:
    """Mean seconds per call of `step` over `iters` calls after `warmup` untimed ones. torch.utils.benchmark's Timer
    synchronises an accelerator around the calls, keeps this process's thread count (its default is one) and warms
    up with two calls of its own."""
    for _ in range(warmup):
        step()
    return Timer("step()", globals={"step": step}, num_threads=torch.get_num_threads()).timeit(iters).mean


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo (elsewhere: the platform's processor)."""
    info = Path("/proc/cpuinfo")
    for line in info.read_text().splitlines() if info.is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"
