"""The denoising-pretraining model (DeP / DDeP) of any encoder-decoder segmentor."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

from ddep.models.segmentor import load_pretrained, probe
from ddep.models.transunet import apply_fast_path
from ddep.noise import NoiseConfig, NoiseSampler, denoising_loss

CHANNELS = 3  # RGB: the noise (or clean image) the head predicts at every pixel


@MODELS.register_module()
class DenoisingPretrainer(BaseModel):
    """A segmentor's backbone, neck and decode head trained to predict the noise (or the clean
    image) of a corrupted image at the input's resolution.

    The parts are built from the segmentor's own configs, so every name but the final
    projection (``decode_head.conv_seg``) matches the fine-tuning model.

    **The noise head.** Most decode heads predict at an output stride ``s`` of 4 or 8; the noise
    is drawn per pixel. Their final projection is therefore rebuilt to predict ``3 * s**2``
    channels, rearranged by ``pixel_shuffle(s)`` into the 3 channels of every input pixel (a
    sub-pixel convolution). At each output location this is exactly a learned linear map from
    the head's feature to the ``s x s`` block of full-resolution pixels it covers, so the
    head can represent independent per-pixel noise; upsampling a 3-channel low-resolution
    prediction (bilinear) cannot: its output is smooth within every block, and white noise
    is not. ``s`` is measured, not configured: one forward of a zero image at build time
    compares the head's output size with the input's (``s = 1`` for the TransUNet, which
    already predicts at full resolution; its projection is kept as it is).

    Args:
        backbone, neck, decode_head: the segmentor's configs (auxiliary heads are not part of
            the denoiser: they only shape a segmentation loss, and fine-tuning starts them
            from random initialisation).
        noise: :class:`ddep.noise.NoiseConfig` arguments.
        freeze_encoder: DDeP: the backbone keeps its (supervised) weights and buffers bit for
            bit (eval mode: no running statistics, no dropout); its parameters get no
            gradient and are left out of the optimizer.
        noise_conditioning: condition the decoder on sigma (heads with a noise embedding only:
            the TransUNet's).
        encoder_weights: the supervised backbone DDeP starts from (loaded in ``init_weights``).
        fast_path: :func:`ddep.models.transunet.apply_fast_path` options.
    """

    final_projection = "decode_head.conv_seg"

    def __init__(self, backbone: dict, decode_head: dict, neck: dict | None = None,
                 noise: dict | None = None, freeze_encoder: bool = False,
                 noise_conditioning: bool = False, encoder_weights: str | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None,
                 fast_path: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck else None
        head = dict(decode_head, num_classes=CHANNELS, out_channels=CHANNELS)
        if noise_conditioning:
            head["noise_conditioning"] = True
        unfit = (f"decode head {decode_head['type']} cannot become a noise head: ddep needs an "
                 f"mmseg BaseDecodeHead-style head whose final projection is `conv_seg`")
        try:
            self.decode_head = MODELS.build(head)
        except TypeError as e:
            if noise_conditioning:
                raise ValueError(f"decode head {decode_head['type']} cannot be conditioned on the "
                                 f"noise level (only heads with a noise embedding, e.g. "
                                 f"TransUNetHead, can): drop noise_conditioning ({e})") from None
            raise ValueError(f"{unfit} ({e})") from None
        if not isinstance(getattr(self.decode_head, "conv_seg", None), nn.Conv2d):
            raise ValueError(f"{unfit} (it has none)")
        self.encoder_weights = encoder_weights
        self.freeze_encoder = False  # set below, after the shape probe
        self._projection = None  # the final projection's last output (heads with several)
        self._watch_projection()
        self.noise = NoiseConfig(**(noise or {}))
        self.noise_sampler = NoiseSampler(self.noise)
        size = getattr(self.data_preprocessor, "size", None) or (64, 64)
        self.noise_stride = self._output_stride(tuple(size))
        if self.noise_stride > 1:
            conv = self.decode_head.conv_seg
            self.decode_head.conv_seg = nn.Conv2d(
                conv.in_channels, CHANNELS * self.noise_stride ** 2, conv.kernel_size,
                stride=conv.stride, padding=conv.padding)
            self._watch_projection()
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        apply_fast_path(self, **(fast_path or {}))

    def _output_stride(self, size: Sequence[int]) -> int:
        """The decode head's output stride at input ``size``: one integer for both axes."""
        sigma = torch.ones(1) if self._conditioned else None
        out = probe(lambda x: self._head(self._features(x), sigma), self, size).shape[-2:]
        ratios = {size[0] / out[0], size[1] / out[1]}
        s = ratios.pop()
        if ratios or s != int(s) or s < 1:
            raise ValueError(f"decode head {type(self.decode_head).__name__} predicts {tuple(out)} "
                             f"for an input of {tuple(size)}: not one integer stride, so no "
                             f"pixel-shuffle noise head fits; pick a crop divisible by the "
                             f"backbone's stride")
        return int(s)

    def init_weights(self) -> None:
        super().init_weights()
        load_pretrained(self, self.encoder_weights, None,
                        f"the denoiser of {type(self.backbone).__name__}")

    def train(self, mode: bool = True) -> "DenoisingPretrainer":
        super().train(mode)
        if self.freeze_encoder:
            self.backbone.eval()  # no dropout / running statistics in the frozen encoder
        return self

    def seed_noise(self, seed: int, rank: int, step: int) -> None:
        """Make the next step's noise a function of (seed, rank, step): see NoiseSeedHook."""
        self.noise_sampler.seed_step(seed, rank, step)

    @property
    def _conditioned(self) -> bool:
        return getattr(self.decode_head, "noise_embed", None) is not None

    def _features(self, x: torch.Tensor):
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_encoder):
            feats = self.backbone(x)
        return self.neck(feats) if self.neck is not None else feats

    def _watch_projection(self) -> None:
        def keep(module, args, output):
            self._projection = output
        self.decode_head.conv_seg.register_forward_hook(keep)

    def _head(self, feats, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """The head's prediction. A head with several outputs in training (PIDNet's P, I and
        D branches, each for its own loss) predicts the noise with the output of its final
        projection ``conv_seg``, the one it segments with at inference; the other branches
        get no loss here and start fine-tuning from what they are."""
        self._projection = None
        out = self.decode_head(feats) if sigma is None else self.decode_head(feats, noise_level=sigma)
        if isinstance(out, (tuple, list)):
            if self._projection is None or not any(o is self._projection for o in out):
                raise ValueError(f"decode head {type(self.decode_head).__name__} returns "
                                 f"{len(out)} outputs, none of them from its final projection "
                                 f"`conv_seg`: ddep cannot tell which one predicts")
            out = self._projection
        return out

    def predict_noise(self, noisy: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """The prediction at the input's resolution (pixel-shuffled where the head's stride > 1)."""
        pred = self._head(self._features(noisy), sigma)
        if self.noise_stride > 1:
            pred = F.pixel_shuffle(pred, self.noise_stride)
        if pred.shape[-2:] != noisy.shape[-2:]:
            raise ValueError(f"the noise head predicts {tuple(pred.shape[-2:])} for an input of "
                             f"{tuple(noisy.shape[-2:])} (stride {self.noise_stride} measured at "
                             f"build time): use crops divisible by the backbone's stride")
        return pred

    @torch.no_grad()
    def heldout_losses(self, inputs: torch.Tensor, seed: int) -> tuple[float, float]:
        """(the loss, the loss of predicting zero) on preprocessed ``inputs`` at this model's own
        noise setting, the noise drawn from a stream of ``seed`` alone (so every model measured
        with one seed sees the same corruptions). Predicting zero scores 1 for an ``eps`` target
        (unit-variance noise): the reference a denoiser that learnt nothing stays at."""
        sampler = NoiseSampler(self.noise)
        sampler.seed_step(seed, rank=-1, step=0)  # rank -1: no training process draws this stream
        batch = sampler(inputs)
        pred = self.predict_noise(batch.noisy, batch.sigma if self._conditioned else None)
        return (denoising_loss(pred, batch.target, self.noise.loss).item(),
                denoising_loss(torch.zeros_like(batch.target), batch.target, self.noise.loss).item())

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = "tensor"):
        batch = self.noise_sampler(inputs)
        pred = self.predict_noise(batch.noisy, batch.sigma if self._conditioned else None)
        if mode == "loss":
            return {"loss": denoising_loss(pred, batch.target, self.noise.loss)}
        return pred


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableOnlyOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, but frozen parameters are not given to the optimizer."""

    def __call__(self, model: torch.nn.Module):
        wrapper = super().__call__(model)
        groups = wrapper.optimizer.param_groups
        for group in groups:
            group["params"] = [p for p in group["params"] if p.requires_grad]
        groups[:] = [g for g in groups if g["params"]]
        return wrapper
