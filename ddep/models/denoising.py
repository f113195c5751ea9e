"""The denoising-pretraining model (DeP / DDeP) as an MMSegmentation model."""
from __future__ import annotations

import torch
from mmengine.model import BaseModel
from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

from ddep.models.transunet import apply_fast_path
from ddep.noise import NoiseConfig, NoiseSampler, denoising_loss


@MODELS.register_module()
class DenoisingPretrainer(BaseModel):
    """TransUNet trained to predict the noise (or the clean image) from a corrupted image.

    The encoder and decoder are built from the same configs as the segmentation model, so
    every name but the final projection (3 outputs here) matches the fine-tuning model.

    Args:
        backbone: encoder config (e.g. ``TransUNetEncoder``).
        decode_head: decoder config; its ``num_classes`` is replaced by 3 (RGB).
        noise: :class:`ddep.noise.NoiseConfig` arguments.
        freeze_encoder: DDeP: the encoder keeps its (supervised) weights and buffers bit for
            bit; its parameters get no gradient and are left out of the optimizer.
        fast_path: :func:`ddep.models.transunet.apply_fast_path` options.
    """

    final_projection = "decode_head.conv_seg"

    def __init__(self, backbone: dict, decode_head: dict, noise: dict | None = None,
                 freeze_encoder: bool = False, data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None, fast_path: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.decode_head = MODELS.build(dict(decode_head, num_classes=3, out_channels=3))
        self.noise = NoiseConfig(**(noise or {}))
        self.noise_sampler = NoiseSampler(self.noise)
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        apply_fast_path(self, **(fast_path or {}))

    def train(self, mode: bool = True) -> "DenoisingPretrainer":
        super().train(mode)
        if self.freeze_encoder:
            self.backbone.eval()  # no dropout / running statistics in the frozen encoder
        return self

    def seed_noise(self, seed: int, rank: int, step: int) -> None:
        """Make the next step's noise a function of (seed, rank, step): see NoiseSeedHook."""
        self.noise_sampler.seed_step(seed, rank, step)

    def predict_noise(self, noisy: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_encoder):
            feats = self.backbone(noisy)
        return self.decode_head(feats, noise_level=sigma)

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = "tensor"):
        batch = self.noise_sampler(inputs)
        sigma = batch.sigma if self.decode_head.noise_embed is not None else None
        pred = self.predict_noise(batch.noisy, sigma)
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
