"""The TransUNet encoder presets and its token stride: plain data, no torch, so that the
workflow's preflight can check crop sizes without importing the model (``ddep.models.transunet``
builds the encoders from them and re-exports them)."""
from __future__ import annotations

# Encoder presets (the decoder widths are in the model config files, ddep/configs/_base_/models).
PRESETS: dict[str, dict] = {
    # The paper's R50-ViT-B/16: ResNetV2 stages (3, 4, 9) then ViT-B (12 x 768, 12 heads).
    "r50_vit_b16": dict(resnet_layers=(3, 4, 9), resnet_channels=(256, 512, 1024), stem_channels=64,
                        norm_groups=32, embed_dim=768, depth=12, num_heads=12),
    # Same classes, ~100x fewer FLOPs: for laptops and CI.
    "tiny": dict(resnet_layers=(1, 1, 1), resnet_channels=(64, 128, 256), stem_channels=32,
                 norm_groups=8, embed_dim=192, depth=4, num_heads=3),
}

TOKEN_STRIDE = 16  # input sizes must be multiples of this (the stride of the ViT tokens)
