"""TransUNet (Chen et al. 2021) as MMSegmentation modules.

* :class:`TransUNetEncoder` — timm's ResNetV2 + ViT hybrid (``VisionTransformer`` with
  ``HybridEmbed``), returning the CNN skip features at strides 2, 4, 8 and the transformer
  tokens reshaped to a stride-16 map (class token dropped).
* :class:`TransUNetHead` — the cascaded upsampler: a 3x3 conv on the tokens, then four
  (upsample x2, concat skip, two conv-norm-relu) blocks, then the final projection
  ``conv_seg`` (a separately named layer, replaced between pretraining and fine-tuning).

The segmentor is mmseg's EncoderDecoder (``ddep.models.segmentor.PretrainableSegmentor``).

Presets: ``r50_vit_b16`` is exactly timm's ``vit_base_r50_s16_224`` encoder (the paper's);
``tiny`` has the same structure with small widths and depth, for CPU runs.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from timm.layers import GroupNormAct, StdConv2dSame
from timm.layers.hybrid_embed import HybridEmbed
from timm.models.resnetv2 import ResNetV2
from timm.models.vision_transformer import VisionTransformer

from ddep.presets import PRESETS, TOKEN_STRIDE  # noqa: F401  (re-exported: torch-free data)


def get_preset(name: str) -> dict:
    """The encoder arguments of a preset; a clear error for an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


def apply_fast_path(model: nn.Module, channels_last: bool = False,
                    compile: bool | dict = False) -> None:
    """Speed options that change results by float rounding only. ``channels_last``: every 4-D
    weight in NHWC, so convolutions run in that layout (oneDNN on CPUs, tensor cores on GPUs),
    set before any DDP wrapper sees the parameters. ``compile``: ``torch.compile`` of the
    encoder and decoder in place (``nn.Module.compile``: parameter names, so checkpoints, stay
    the same); a dict is passed to it. The whole ``train_step`` (mmengine's ``cfg.compile``)
    is not compiled: its optimizer step and loss bookkeeping only add graph breaks."""
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile:
        for name in ("backbone", "decode_head"):
            part = getattr(model, name, None)
            if part is not None:
                part.compile(**({} if compile is True else dict(compile)))


def build_hybrid_vit(resnet_layers: Sequence[int], resnet_channels: Sequence[int],
                     stem_channels: int, norm_groups: int, embed_dim: int, depth: int,
                     num_heads: int, img_size: int | Sequence[int] = 224) -> VisionTransformer:
    """timm's ResNetV2 + ViT hybrid, built the way ``timm.create_model('vit_base_r50_s16_224')``
    builds it (same module names, so timm checkpoints load), with ``dynamic_img_size`` so any
    input divisible by 16 works."""
    cnn = ResNetV2(
        layers=tuple(resnet_layers), channels=tuple(resnet_channels), stem_chs=stem_channels,
        num_classes=0, global_pool="", preact=False, stem_type="same",
        conv_layer=partial(StdConv2dSame, eps=1e-8),
        norm_layer=partial(GroupNormAct, num_groups=norm_groups))
    return VisionTransformer(
        img_size=img_size, patch_size=1, embed_dim=embed_dim, depth=depth, num_heads=num_heads,
        num_classes=0, dynamic_img_size=True, embed_layer=partial(HybridEmbed, backbone=cnn))


@MODELS.register_module()
class TransUNetEncoder(BaseModule):
    """ResNetV2 + ViT hybrid encoder returning ``[s2, s4, s8, tokens16]`` (NCHW maps).

    Args:
        preset: name in :data:`PRESETS`.
        img_size: training crop size; the position embedding is stored at this grid and
            resampled on the fly for other sizes.
        pretrained: a timm-format checkpoint (``.pth``/``.safetensors`` file, or a timm hub
            name such as ``vit_base_r50_s16_224.orig_in21k`` found in the local HF cache),
            loaded by :meth:`init_weights`.
    """

    def __init__(self, preset: str = "r50_vit_b16", img_size: int | Sequence[int] = 224,
                 pretrained: str | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.preset = preset
        self.arch = get_preset(preset)
        self.vit = build_hybrid_vit(img_size=img_size, **self.arch)
        self.pretrained = pretrained
        stem = self.arch["stem_channels"]
        self.out_channels = (stem, *self.arch["resnet_channels"][:2], self.arch["embed_dim"])

    def init_weights(self) -> None:
        # timm already initialised the modules at construction; only load a checkpoint here.
        if self.pretrained:
            self.load_pretrained(self.pretrained)

    def load_pretrained(self, source: str, model_name: str = "") -> None:
        """timm-format weights (ddep's supervised stand-in saves this format, in21k has it)."""
        from ddep.models.weights import load_timm_encoder
        load_timm_encoder(self.vit, source, f"the {self.preset!r} TransUNet encoder")

    def pretrained_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights in timm's format, as :meth:`load_pretrained` reads them."""
        return self.vit.state_dict()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        n, _, h, w = x.shape
        if h % TOKEN_STRIDE or w % TOKEN_STRIDE:
            raise ValueError(f"TransUNet input size must be divisible by {TOKEN_STRIDE}, got {h}x{w}")
        embed = self.vit.patch_embed
        # timm's ResNetV2 feature indices: 0 = stem (stride 2, before pooling), 1.. = stages.
        cnn_out, skips = embed.backbone.forward_intermediates(x, indices=(0, 1, 2))
        tokens = embed.proj(cnn_out).permute(0, 2, 3, 1)  # NHWC, as dynamic pos-embed expects
        t = self.vit._pos_embed(tokens)
        t = self.vit.norm_pre(self.vit.patch_drop(t))
        t = self.vit.norm(self.vit.blocks(t))
        t = t[:, self.vit.num_prefix_tokens:]
        tokens16 = t.transpose(1, 2).reshape(n, -1, h // TOKEN_STRIDE, w // TOKEN_STRIDE)
        return [*skips, tokens16]


class DecoderBlock(nn.Module):
    """Upsample x2, concatenate the skip feature (if any), two conv-norm-relu."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int,
                 norm_cfg: dict, act_cfg: dict) -> None:
        super().__init__()
        conv = partial(ConvModule, kernel_size=3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = conv(in_channels + skip_channels, out_channels)
        self.conv2 = conv(out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        size = skip.shape[-2:] if skip is not None else tuple(2 * s for s in x.shape[-2:])
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        if skip is not None:
            # Concatenate in the layout conv1 computes in (its weight's): timm's StdConv encoder
            # runs NCHW even under channels_last, and a mixed concatenation would be copied
            # whole into NHWC by conv1's forward and again by its backward. Same values.
            if self.conv1.conv.weight.is_contiguous(memory_format=torch.channels_last):
                skip = skip.contiguous(memory_format=torch.channels_last)
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class NoiseLevelEmbedding(nn.Module):
    """Sinusoidal features of log(sigma) -> MLP -> one bias per decoder channel (ablation only)."""

    def __init__(self, out_features: int, num_frequencies: int = 16, hidden: int = 128) -> None:
        super().__init__()
        self.register_buffer("freqs", torch.exp(torch.linspace(0, math.log(1000), num_frequencies)),
                             persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * num_frequencies, hidden), nn.SiLU(),
                                 nn.Linear(hidden, out_features))

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        angle = torch.log(sigma.clamp_min(1e-4))[:, None] * self.freqs[None]
        return self.mlp(torch.cat([angle.sin(), angle.cos()], dim=1))


@MODELS.register_module()
class TransUNetHead(BaseDecodeHead):
    """TransUNet's cascaded upsampler.

    Args:
        in_channels: channels of ``[s2, s4, s8, tokens16]`` from the encoder.
        head_channels: output of the 3x3 conv on the tokens (512 in TransUNet).
        decoder_channels: outputs of the four upsampling blocks (256, 128, 64, 16).
        noise_conditioning: add a sigma embedding to every block (denoising ablation only).
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``, ``norm_cfg``, loss, ...).
    """

    def __init__(self, in_channels: Sequence[int], head_channels: int = 512,
                 decoder_channels: Sequence[int] = (256, 128, 64, 16),
                 noise_conditioning: bool = False, **kwargs) -> None:
        kwargs.setdefault("dropout_ratio", 0.0)
        super().__init__(in_channels=list(in_channels), channels=decoder_channels[-1],
                         in_index=list(range(len(in_channels))),
                         input_transform="multiple_select", **kwargs)
        skip_channels = (*reversed(self.in_channels[:3]), 0)  # s8, s4, s2, none
        self.conv_more = ConvModule(self.in_channels[3], head_channels, 3, padding=1,
                                    norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        ins = (head_channels, *decoder_channels[:-1])
        self.blocks = nn.ModuleList(
            DecoderBlock(i, s, o, self.norm_cfg, self.act_cfg)
            for i, s, o in zip(ins, skip_channels, decoder_channels))
        self.noise_embed = NoiseLevelEmbedding(sum(decoder_channels)) if noise_conditioning else None
        # The final projection: 3x3 as in TransUNet's SegmentationHead (BaseDecodeHead's is 1x1).
        self.conv_seg = nn.Conv2d(self.channels, self.out_channels, kernel_size=3, padding=1)

    def forward(self, inputs: Sequence[torch.Tensor],
                noise_level: torch.Tensor | None = None) -> torch.Tensor:
        s2, s4, s8, tokens = self._transform_inputs(inputs)
        biases: Sequence[torch.Tensor | None] = [None] * len(self.blocks)
        if self.noise_embed is not None:
            if noise_level is None:
                raise ValueError("this head is noise-conditioned: pass noise_level")
            sizes = [b.conv2.conv.out_channels for b in self.blocks]
            biases = self.noise_embed(noise_level).split(sizes, dim=1)
        x = self.conv_more(tokens)
        for block, skip, bias in zip(self.blocks, (s8, s4, s2, None), biases):
            x = block(x, skip)
            if bias is not None:
                x = x + bias[:, :, None, None].to(x.dtype)
        return self.cls_seg(x)

    def loss_by_feat(self, seg_logits: torch.Tensor, batch_data_samples) -> dict:
        """mmseg's loss without its resize (this head predicts at input resolution already).
        ``acc_seg``, only a training log signal, is measured on every 4th pixel in each direction:
        an argmax over classes at full resolution costs as much as the loss itself on a CPU."""
        seg_label = self._stack_batch_gt(batch_data_samples)
        if seg_logits.shape[-2:] != seg_label.shape[-2:] or isinstance(self.loss_decode, nn.ModuleList):
            return super().loss_by_feat(seg_logits, batch_data_samples)
        label = seg_label.squeeze(1)
        loss = {self.loss_decode.loss_name: self.loss_decode(seg_logits, label,
                                                             ignore_index=self.ignore_index)}
        with torch.no_grad():
            logits, label = seg_logits[..., ::4, ::4], label[..., ::4, ::4]
            valid = label != self.ignore_index
            correct = (logits.argmax(1) == label) & valid
            loss["acc_seg"] = correct.sum() * 100.0 / valid.sum().clamp_min(1)
        return loss
