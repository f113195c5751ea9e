# TransUNet R50-ViT-B/16 (the paper's model).
# The encoder is built from ddep.models.transunet.PRESETS['r50_vit_b16']; the decoder's input channels
# are that encoder's [stem, stage 1, stage 2, ViT] widths. The dataset config or the job sets
# num_classes, the crop size (img_size, size) and the sliding-window test_cfg.
norm_cfg = dict(type='BN', requires_grad=True)
# Images enter in [-1, 1] (mean = std = 127.5): the pixel space of the noise (ddep.noise) and
# of timm's R50-ViT-B/16 in21k weights. Test images are padded to the token stride (16).
data_preprocessor = dict(
    type='SegDataPreProcessor', mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=None, test_cfg=dict(size_divisor=16))
model = dict(
    type='TransUNetSegmentor',
    init_from=None,  # a denoising checkpoint (all but the final projection)
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
