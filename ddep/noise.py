"""The denoising objective: the only place noise is added to images.

Pixel space: images are normalised to [-1, 1] (mean = std = 127.5, as in DDPM and the paper)
by the model's data preprocessor *before* they reach this module, so ``sigma`` is measured in
units of half the 8-bit range: sigma = 0.2 is a noise std of about 25 grey levels.

Two corruptions, both driven by the same noise level ``sigma``:

* ``unscaled``:  x_noisy = x + sigma * eps
* ``scaled``:    x_noisy = sqrt(gamma) * x + sqrt(1 - gamma) * eps,  gamma = 1 / (1 + sigma^2)

so the scaled form is the unscaled one divided by sqrt(1 + sigma^2): the same signal-to-noise
ratio, but variance preserving (unit-variance x stays unit variance). The network predicts
``eps`` (default) or the clean ``x``; the loss is the mean squared (or absolute) error.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch

from ddep.sweep import (DEFAULT_SIGMA, FORMULATIONS, LOSSES, TARGETS, NoiseSetting, sigma_label,
                        sigma_values)

Formulation = Literal["unscaled", "scaled"]  # ddep.sweep.FORMULATIONS
Target = Literal["eps", "x"]                 # ddep.sweep.TARGETS
LossKind = Literal["l2", "l1"]               # ddep.sweep.LOSSES


@dataclass(frozen=True)
class NoiseConfig:
    """One denoising setting as the training step uses it: the values of a
    :class:`ddep.sweep.NoiseSetting` (which holds the allowed values and defaults) and the loss.

    Args:
        sigma: a fixed noise level, or an interval ``(a, b)`` from which each sample's level
            is drawn uniformly.
        formulation: ``"unscaled"`` (x + sigma*eps) or ``"scaled"`` (variance preserving).
        target: what the network predicts, ``"eps"`` or ``"x"``.
        loss: ``"l2"`` (paper) or ``"l1"``.
    """

    sigma: float | tuple[float, float] = DEFAULT_SIGMA
    formulation: Formulation = FORMULATIONS[0]
    target: Target = TARGETS[0]
    loss: LossKind = LOSSES[0]

    def __post_init__(self) -> None:
        if isinstance(self.sigma, (list, tuple)) and len(self.sigma) != 2:
            raise ValueError(f"noise sigma interval must be [a, b], got {list(self.sigma)}")
        values = sigma_values(tuple(self.sigma) if isinstance(self.sigma, list) else self.sigma)
        object.__setattr__(self, "sigma", values if len(values) == 2 else values[0])
        NoiseSetting(sigma=self.sigma, formulation=self.formulation, target=self.target)  # checks the axes
        if self.loss not in LOSSES:
            raise ValueError(f"noise loss must be one of {LOSSES}, got {self.loss!r}")

    @property
    def label(self) -> str:
        """Short name of the sigma setting used in file names and tables: '0.2' or 'U(0.2,0.3)'."""
        return sigma_label(self.sigma)


class NoisyBatch(NamedTuple):
    noisy: torch.Tensor   # network input
    target: torch.Tensor  # what the network should predict
    sigma: torch.Tensor   # (N,) noise level of each sample, for optional conditioning


def sample_sigma(cfg: NoiseConfig, batch_size: int, device: torch.device | str = "cpu",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Noise level per sample: the fixed value, or U[a, b] draws."""
    if isinstance(cfg.sigma, tuple):
        a, b = cfg.sigma
        u = torch.rand(batch_size, generator=generator, device=device)
        return a + (b - a) * u
    return torch.full((batch_size,), cfg.sigma, device=device)


def corrupt(x: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor,
            formulation: Formulation = "unscaled") -> torch.Tensor:
    """Apply the corruption with per-sample ``sigma`` (shape (N,)) and noise ``eps`` (shape of x)."""
    s = sigma.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
    if formulation == "unscaled":
        return x + s * eps
    if formulation == "scaled":
        gamma = 1.0 / (1.0 + s * s)
        return gamma.sqrt() * x + (1.0 - gamma).sqrt() * eps
    raise ValueError(f"unknown noise formulation {formulation!r}")


def make_noisy_batch(x: torch.Tensor, cfg: NoiseConfig,
                     generator: torch.Generator | None = None) -> NoisyBatch:
    """Corrupt a batch of [-1, 1] images and return (input, target, sigma)."""
    sigma = sample_sigma(cfg, x.shape[0], x.device, generator)
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    noisy = corrupt(x, sigma, eps, cfg.formulation)
    return NoisyBatch(noisy, eps if cfg.target == "eps" else x, sigma)


def step_seed(seed: int, rank: int, step: int) -> int:
    """A 63-bit generator seed for one (run seed, process rank, training step)."""
    digest = hashlib.sha256(f"ddep-noise:{seed}:{rank}:{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class NoiseSampler:
    """The noise of one training process, drawn from a private generator that is re-seeded at
    every training step from (run seed, rank, step).

    The noise of step t is then a function of t alone: a job resumed from a checkpoint at any
    step (mmengine checkpoints the step) draws exactly the noise of an uninterrupted run, every
    DDP rank draws its own, and no other consumer of torch's global RNG can shift it. Until
    :meth:`seed_step` is called (e.g. in unit tests) it draws from the global RNG.
    """

    def __init__(self, cfg: NoiseConfig) -> None:
        self.cfg = cfg
        self._generator: torch.Generator | None = None
        self._pending_seed: int | None = None

    def seed_step(self, seed: int, rank: int, step: int) -> None:
        """Called before each training step; the next draw starts the step's stream."""
        self._pending_seed = step_seed(seed, rank, step)

    def __call__(self, x: torch.Tensor) -> NoisyBatch:
        if self._pending_seed is not None:
            if self._generator is None or self._generator.device != x.device:
                self._generator = torch.Generator(device=x.device)
            self._generator.manual_seed(self._pending_seed)
            self._pending_seed = None
        return make_noisy_batch(x, self.cfg, self._generator)


def denoising_loss(pred: torch.Tensor, target: torch.Tensor, kind: LossKind = "l2") -> torch.Tensor:
    """Mean squared (``l2``) or absolute (``l1``) error over all pixels and channels."""
    diff = pred.float() - target.float()
    return diff.pow(2).mean() if kind == "l2" else diff.abs().mean()
