# TransUNet R50-ViT-B/16 (the paper's model).
# The encoder is built from ddep.models.transunet.PRESETS['r50_vit_b16']; the decoder's input channels
# are that encoder's [stem, stage 1, stage 2, ViT] widths. The composer (ddep.configs.compose)
# sets num_classes, the crop size (img_size, size), the pixel space ([-1, 1], compose.PIXELS,
# as every model's) and the sliding-window test_cfg.
norm_cfg = dict(type='BN', requires_grad=True)
# Test images are padded to the token stride (16).
data_preprocessor = dict(type='SegDataPreProcessor', size=None, test_cfg=dict(size_divisor=16))
model = dict(
    type='PretrainableSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='TransUNetEncoder', preset='r50_vit_b16', img_size=None, pretrained=None),
    decode_head=dict(
        type='TransUNetHead', in_channels=[64, 256, 512, 768], head_channels=512,
        decoder_channels=(256, 128, 64, 16), norm_cfg=norm_cfg, align_corners=False,
        num_classes=None, ignore_index=255,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                         avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
