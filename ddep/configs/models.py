"""Model configs (plain dicts, built through mmseg's MODELS registry)."""
from __future__ import annotations

from typing import Sequence

from ddep.models.transunet import TOKEN_STRIDE, get_preset

# Images enter every model in [-1, 1] (mean = std = 127.5): the pixel space of the noise
# (ddep.noise) and of timm's R50-ViT-B/16 in21k weights.
DATA_PREPROCESSOR = dict(type="SegDataPreProcessor", mean=[127.5] * 3, std=[127.5] * 3,
                         bgr_to_rgb=True, pad_val=0, seg_pad_val=255)


def _parts(preset: str, img_size: int | Sequence[int], pretrained: str | None,
           norm_cfg: dict) -> tuple[dict, dict]:
    arch = get_preset(preset)
    enc = arch["encoder"]
    backbone = dict(type="TransUNetEncoder", preset=preset, img_size=_pair(img_size),
                    pretrained=pretrained)
    in_channels = [enc["stem_channels"], *enc["resnet_channels"][:2], enc["embed_dim"]]
    head = dict(type="TransUNetHead", in_channels=in_channels, norm_cfg=norm_cfg,
                align_corners=False, **arch["decoder"])
    return backbone, head


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def segmentor_cfg(preset: str, num_classes: int, img_size: int | Sequence[int],
                  test_stride: int | Sequence[int] | None = None, pretrained: str | None = None,
                  init_from: str | None = None, norm_cfg: dict | None = None,
                  ignore_index: int = 255) -> dict:
    """TransUNet for segmentation. ``pretrained``: timm-format encoder weights (21K / DDeP);
    ``init_from``: a denoising checkpoint (all but the final projection).

    Inference slides a window of the training crop (``img_size``) with ``test_stride`` over the
    test image, as mmseg's ViT configs do, so the position embedding is always used at the size
    it was trained at (``test_stride=None``: one pass over the whole image). Test images are
    first padded to a multiple of the token stride (mmseg's ``SegDataPreProcessor.test_cfg``),
    and the padding is cut off again before the prediction is resized to the label map's size,
    so every image size works."""
    norm_cfg = norm_cfg or dict(type="BN", requires_grad=True)
    backbone, head = _parts(preset, img_size, pretrained, norm_cfg)
    head.update(num_classes=num_classes, ignore_index=ignore_index,
                loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0,
                                 avg_non_ignore=True))
    test_cfg = dict(mode="whole") if test_stride is None else \
        dict(mode="slide", crop_size=_pair(img_size), stride=_pair(test_stride))
    return dict(type="TransUNetSegmentor", init_from=init_from,
                data_preprocessor=dict(DATA_PREPROCESSOR, size=_pair(img_size),
                                       test_cfg=dict(size_divisor=TOKEN_STRIDE)),
                backbone=backbone, decode_head=head, train_cfg=dict(), test_cfg=test_cfg)


def denoiser_cfg(preset: str, img_size: int | Sequence[int], noise: dict | None = None,
                 freeze_encoder: bool = False, noise_conditioning: bool = False,
                 pretrained: str | None = None, norm_cfg: dict | None = None) -> dict:
    """The denoising-pretraining model: DeP (``freeze_encoder=False``) or DDeP."""
    norm_cfg = norm_cfg or dict(type="BN", requires_grad=True)
    backbone, head = _parts(preset, img_size, pretrained, norm_cfg)
    head.update(noise_conditioning=noise_conditioning, num_classes=3)
    return dict(type="DenoisingPretrainer", noise=noise or {}, freeze_encoder=freeze_encoder,
                data_preprocessor=dict(DATA_PREPROCESSOR, size=_pair(img_size)),
                backbone=backbone, decode_head=head)
