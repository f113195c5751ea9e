# TransUNet, 'tiny' preset: the R50-ViT-B/16 layout at ~1/100 of the FLOPs (laptops, CI).
# Only the widths differ from the paper's model: the encoder is built from
# ddep.models.transunet.PRESETS['tiny']; the decoder's input channels are that encoder's
# [stem, stage 1, stage 2, ViT] widths.
_base_ = ['./transunet_r50_vit_b16.py']
model = dict(
    backbone=dict(preset='tiny'),
    decode_head=dict(in_channels=[32, 64, 128, 192], head_channels=128,
                     decoder_channels=(64, 32, 16, 16)))
