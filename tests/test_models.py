"""TransUNet structure, timm weight loading, DDeP freezing and checkpoint transfer."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS

import ddep.models  # noqa: F401  (registers the modules)
from ddep.models import CheckpointError, export_weights, load_timm_encoder


def seg_model(preset, num_classes=2, img_size=224, **kw):
    from ddep.configs import segmentor_cfg
    return MODELS.build(segmentor_cfg(preset, num_classes, img_size, **kw))


def denoiser(preset="tiny", img_size=64, **kw):
    from ddep.configs import denoiser_cfg
    return MODELS.build(denoiser_cfg(preset, img_size, **kw))


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_r50_vit_b16_matches_official_transunet_size_and_shapes():
    model = seg_model("r50_vit_b16", num_classes=2).eval()
    # official TransUNet R50-ViT-B_16: 105.28M parameters
    assert n_params(model) == pytest.approx(105.28e6, rel=0.005)
    x = torch.zeros(1, 3, 224, 224)
    with torch.no_grad():
        feats = model.backbone(x)
        out = model.decode_head(feats)
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 112, 112), (256, 56, 56), (512, 28, 28), (768, 14, 14)]
    assert tuple(out.shape) == (1, 2, 224, 224)


@pytest.mark.parametrize("size", [(64, 128), (96, 160), (128, 128)])
def test_tiny_works_at_any_size_divisible_by_16(size):
    model = seg_model("tiny", num_classes=7, img_size=(64, 128)).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        feats = model.backbone(x)
        out = model.decode_head(feats)
    h, w = size
    assert [tuple(f.shape[2:]) for f in feats] == [(h // 2, w // 2), (h // 4, w // 4), (h // 8, w // 8), (h // 16, w // 16)]
    assert tuple(out.shape) == (2, 7, h, w)
    with pytest.raises(ValueError, match="divisible by 16"):
        model.backbone(torch.zeros(1, 3, 65, 128))


@pytest.fixture(scope="module")
def timm_r50_checkpoints(tmp_path_factory):
    """A random-weight timm vit_base_r50_s16_224 checkpoint in both file formats (no download)."""
    import timm
    from safetensors.torch import save_file
    ref = timm.create_model("vit_base_r50_s16_224", pretrained=False, num_classes=0)
    state = ref.state_dict()
    d = tmp_path_factory.mktemp("timm")
    save_file(state, str(d / "model.safetensors"))
    torch.save({"state_dict": state}, d / "model.pth")
    return state, d


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
@pytest.mark.parametrize("img_size", [224, (256, 512)])
def test_timm_checkpoint_loads_into_encoder(timm_r50_checkpoints, fmt, img_size):
    state, d = timm_r50_checkpoints
    from ddep.models import TransUNetEncoder
    enc = TransUNetEncoder("r50_vit_b16", img_size=img_size, pretrained=str(d / f"model.{fmt}"))
    enc.init_weights()  # raises on any missing / unexpected / mis-shaped key
    own = enc.vit.state_dict()
    assert set(own) == set(state)
    for key in ("patch_embed.backbone.stem.conv.weight", "blocks.11.mlp.fc2.weight", "norm.bias"):
        assert torch.equal(own[key], state[key])
    if img_size == 224:
        assert torch.equal(own["pos_embed"], state["pos_embed"])
    else:
        assert own["pos_embed"].shape == (1, 1 + 16 * 32, 768)  # resampled to the new grid


def test_missing_or_unfit_checkpoint_gives_clear_error(tmp_path, monkeypatch, timm_r50_checkpoints):
    from ddep.models import TransUNetEncoder
    with pytest.raises(CheckpointError, match="not found: .*nope.pth"):
        TransUNetEncoder("tiny", pretrained=str(tmp_path / "nope.pth")).init_weights()
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(CheckpointError, match="not in the local Hugging Face cache"):
        TransUNetEncoder("tiny", pretrained="vit_base_r50_s16_224.orig_in21k").init_weights()
    _, d = timm_r50_checkpoints
    with pytest.raises(CheckpointError, match="wrong preset"):
        load_timm_encoder(TransUNetEncoder("tiny").vit, d / "model.safetensors")


def _batch(n=4, size=64, seed=0):
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    return {"inputs": [(torch.rand(3, size, size, generator=g) * 255).to(torch.uint8) for _ in range(n)],
            "data_samples": [SegDataSample(metainfo=dict(img_shape=(size, size))) for _ in range(n)]}


def test_ddep_freezes_the_encoder_bit_for_bit():
    torch.manual_seed(0)
    model = denoiser(freeze_encoder=True)
    enc_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    dec_before = {k: v.clone() for k, v in model.decode_head.state_dict().items()}
    wrapper = build_optim_wrapper(model, dict(
        constructor="TrainableOnlyOptimWrapperConstructor",
        optimizer=dict(type="AdamW", lr=1e-2, weight_decay=0.05)))
    in_optimizer = {id(p) for g in wrapper.optimizer.param_groups for p in g["params"]}
    assert not in_optimizer & {id(p) for p in model.backbone.parameters()}
    assert in_optimizer == {id(p) for p in model.decode_head.parameters()}
    model.train()
    for step in range(3):
        model.train_step(_batch(seed=step), wrapper)
    enc_after = model.backbone.state_dict()
    assert all(torch.equal(enc_before[k], enc_after[k]) for k in enc_before)
    dec_after = model.decode_head.state_dict()
    assert any(not torch.equal(dec_before[k], dec_after[k]) for k in dec_before)


def test_dep_trains_the_encoder_too():
    torch.manual_seed(0)
    model = denoiser(freeze_encoder=False, noise=dict(sigma=(0.1, 0.3)), noise_conditioning=True)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(type="AdamW", lr=1e-2)))
    model.train()
    losses = [model.train_step(_batch(seed=s), wrapper)["loss"].item() for s in range(3)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert any(not torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())


def test_transfer_loads_everything_but_the_final_projection(tmp_path):
    torch.manual_seed(0)
    pre = denoiser(noise_conditioning=True)
    export_weights(pre, tmp_path / "dep.pth", meta={"arm": "dep"})
    seg = seg_model("tiny", num_classes=5, img_size=64, init_from=str(tmp_path / "dep.pth"))
    fresh_projection = seg.decode_head.conv_seg.weight.clone()
    from ddep.models import transfer_weights
    report = transfer_weights(seg, tmp_path / "dep.pth")
    src, dst = pre.state_dict(), seg.state_dict()
    assert set(report.missing) == {"decode_head.conv_seg.weight", "decode_head.conv_seg.bias"}
    assert {k for k in report.skipped if not k.startswith("decode_head.noise_embed.")} == set(report.missing)
    assert set(report.loaded) == set(dst) - set(report.missing)
    assert all(torch.equal(src[k], dst[k]) for k in report.loaded)
    assert torch.equal(seg.decode_head.conv_seg.weight, fresh_projection)
    assert "skipped" in report.summary()
    seg2 = seg_model("tiny", num_classes=5, img_size=64, init_from=str(tmp_path / "dep.pth"))
    seg2.init_weights()  # the path the runner takes
    assert torch.equal(seg2.backbone.vit.blocks[0].attn.qkv.weight, pre.backbone.vit.blocks[0].attn.qkv.weight)


def test_vit_attention_runs_through_the_fused_sdpa_kernel(monkeypatch):
    """timm's Attention uses F.scaled_dot_product_attention (flash / memory-efficient kernels on
    a GPU) only when its fused_attn flag is on: every block of the encoder must take that path."""
    import torch.nn.functional as F
    calls = []
    sdpa = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    model = seg_model("tiny", num_classes=3, img_size=(64, 128)).eval()
    assert all(block.attn.fused_attn for block in model.backbone.vit.blocks)
    with torch.no_grad():
        model.backbone(torch.zeros(1, 3, 64, 128))
    depth = len(model.backbone.vit.blocks)
    assert len(calls) == depth  # (batch, heads, 1 class token + 4x8 tokens, head dim)
    assert all(tuple(s[:3]) == (1, 3, 33) for s in calls)


def _labelled_batch(n=2, size=(64, 128), classes=5, seed=0):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, classes, (1, *size), generator=g))
        samples.append(sample)
    return {"inputs": [(torch.rand(3, *size, generator=g) * 255).to(torch.uint8) for _ in range(n)],
            "data_samples": samples}


def _train_three_steps(cfg, fast_path, batch, **wrapper):
    torch.manual_seed(0)
    model = MODELS.build(dict(cfg, fast_path=fast_path)).train()
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(type="AdamW", lr=1e-3), **wrapper))
    losses = [model.train_step(batch(seed=s), wrapper)["loss"].item() for s in range(3)]
    return model, losses


@pytest.mark.parametrize("options", [dict(channels_last=True), dict(compile=True)],
                         ids=["channels_last", "compile"])
def test_fast_path_trains_like_the_baseline_and_keeps_the_checkpoint_names(options):
    """Each fast-path option changes results by float rounding only: from the same weights,
    the same losses over three AdamW steps, and weights that differ by less than the three
    steps' size (Adam normalises the gradient, so a rounding-level gradient near 0 can move a
    weight by up to lr per step) and by a tenth of a step on average; the parameter names (so
    checkpoints) do not change."""
    from ddep.configs import segmentor_cfg
    cfg = segmentor_cfg("tiny", 5, (64, 128))
    base, base_losses = _train_three_steps(cfg, {}, _labelled_batch)
    fast, fast_losses = _train_three_steps(cfg, options, _labelled_batch)
    assert fast_losses == pytest.approx(base_losses, rel=1e-4)
    assert fast_losses != pytest.approx(base_losses[::-1], rel=1e-4)  # the steps do differ
    base_state, fast_state = base.state_dict(), fast.state_dict()
    assert list(fast_state) == list(base_state)
    diffs = torch.cat([(fast_state[k].float() - base_state[k].float()).abs().flatten()
                       for k in base_state])
    # one thread (tests/conftest.py) sums NHWC convolutions in another order: 3.1e-3 measured
    assert diffs.max() < 5 * 1e-3 and diffs.mean() < 1e-3 / 10
    stem = fast.backbone.vit.patch_embed.backbone.stem.conv.weight
    assert stem.is_contiguous(memory_format=torch.channels_last) == bool(options.get("channels_last"))


def test_channels_last_ddep_pretraining_matches_and_keeps_the_encoder_frozen():
    from ddep.configs import denoiser_cfg
    cfg = denoiser_cfg("tiny", 64, freeze_encoder=True)
    wrapper = dict(constructor="TrainableOnlyOptimWrapperConstructor")
    base, base_losses = _train_three_steps(cfg, {}, _batch, **wrapper)
    fast, fast_losses = _train_three_steps(cfg, dict(channels_last=True), _batch, **wrapper)
    assert fast_losses == pytest.approx(base_losses, rel=1e-4)
    assert all(torch.equal(a, b) for a, b in zip(base.backbone.state_dict().values(),
                                                   fast.backbone.state_dict().values()))


def test_channels_last_decoder_concatenates_nhwc_and_computes_the_same_bits(monkeypatch):
    """Under channels_last the encoder's skips come out NCHW (timm's StdConv standardises its
    weight into a new NCHW tensor); the decoder converts them before concatenating, so conv1
    gets NHWC input and copies nothing. Its loss and every gradient equal, bit for bit, those of
    concatenating the mixed layouts, which each conv1 converted itself."""
    from ddep.configs import segmentor_cfg
    from ddep.models.transunet import DecoderBlock
    model = MODELS.build(dict(segmentor_cfg("tiny", 5, (64, 128)),
                              fast_path=dict(channels_last=True))).train()
    batch = model.data_preprocessor(_labelled_batch(), True)

    def loss_and_grads():
        model.zero_grad()
        loss = model.loss(**batch)["decode.loss_ce"]
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    conv1_inputs = []
    hooks = [b.conv1.register_forward_pre_hook(lambda m, args: conv1_inputs.append(args[0]))
             for b in model.decode_head.blocks[:3]]  # the blocks with a skip
    loss, grads = loss_and_grads()
    for h in hooks:
        h.remove()
    assert [x.is_contiguous(memory_format=torch.channels_last) for x in conv1_inputs] == [True] * 3

    def mixed_concatenation(self, x, skip):
        x = torch.nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear",
                                            align_corners=False)
        assert not skip.is_contiguous(memory_format=torch.channels_last)  # the layout it fixes
        return self.conv2(self.conv1(torch.cat([x, skip], dim=1)))
    plain_forward = DecoderBlock.forward  # the block without a skip is unchanged
    monkeypatch.setattr(DecoderBlock, "forward", lambda self, x, skip: (
        mixed_concatenation(self, x, skip) if skip is not None else plain_forward(self, x, skip)))
    mixed_loss, mixed_grads = loss_and_grads()
    assert torch.equal(loss, mixed_loss)
    assert len(grads) == len(mixed_grads) and all(map(torch.equal, grads, mixed_grads))


def test_cpu_bf16_autocast_trains_like_fp32_within_bf16_tolerance():
    import ddep.train.components  # noqa: F401  (registers CPUBF16OptimWrapper)
    from ddep.configs import segmentor_cfg
    cfg = segmentor_cfg("tiny", 5, (64, 128))
    _, fp32_losses = _train_three_steps(cfg, {}, _labelled_batch)
    model, bf16_losses = _train_three_steps(cfg, {}, _labelled_batch, type="CPUBF16OptimWrapper")
    assert bf16_losses == pytest.approx(fp32_losses, rel=2e-2)  # bf16: 8 bits of mantissa
    assert bf16_losses != pytest.approx(fp32_losses, rel=1e-6)  # it did compute in bf16
    wrapper = build_optim_wrapper(model, dict(type="CPUBF16OptimWrapper",
                                              optimizer=dict(type="SGD", lr=0.1)))
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")


# --- any mmseg encoder-decoder ------------------------------------------------------------

from conftest import DEEPLAB, MMSEG_MODELS, SEGFORMER  # noqa: E402

UNET = "mmseg::unet/unet-s5-d16_fcn_4xb4-160k_cityscapes-512x1024.py"


@pytest.mark.parametrize("model, stride", [(SEGFORMER, 4), (DEEPLAB, 4), (UNET, 1), ("tiny", 1)])
def test_the_noise_head_predicts_every_pixel(model, stride):
    """The head's output stride is measured at build time; a head at stride s predicts 3 s^2
    channels, pixel-shuffled to the input's resolution (a full-resolution head: 3, as it is)."""
    torch.manual_seed(0)
    d = denoiser(model, img_size=(64, 96))
    assert d.noise_stride == stride
    assert d.decode_head.conv_seg.out_channels == 3 * stride ** 2
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    assert d.predict_noise(x).shape == x.shape
    # per-pixel: the prediction is not constant on the s x s blocks a bilinear upsampling makes
    if stride > 1:
        pred = d.predict_noise(x)
        assert not torch.allclose(pred[..., 0::stride, 0::stride], pred[..., 1::stride, 0::stride])
    assert not hasattr(d, "auxiliary_head")  # auxiliary heads are not pretrained


@pytest.mark.parametrize("model", MMSEG_MODELS)
def test_ddep_freezes_an_mmseg_backbone_bit_for_bit(model):
    """Parameters and buffers (BatchNorm running statistics) of the frozen backbone stay
    exactly as loaded through training steps; the decoder (neck and head) trains."""
    torch.manual_seed(0)
    d = denoiser(model, img_size=(64, 64), freeze_encoder=True)
    before = {k: v.clone() for k, v in d.backbone.state_dict().items()}
    head_before = {k: v.clone() for k, v in d.decode_head.state_dict().items()}
    wrapper = build_optim_wrapper(d, dict(
        constructor="TrainableOnlyOptimWrapperConstructor",
        optimizer=dict(type="AdamW", lr=1e-2, weight_decay=0.05)))
    assert not {id(p) for g in wrapper.optimizer.param_groups for p in g["params"]} & \
        {id(p) for p in d.backbone.parameters()}
    d.train()
    assert not any(m.training for m in d.backbone.modules())
    for step in range(2):
        d.train_step(_batch(seed=step), wrapper)
    after = d.backbone.state_dict()
    assert any("running_mean" in k for k in after) == (model == DEEPLAB)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(not torch.equal(head_before[k], v) for k, v in d.decode_head.state_dict().items())


@pytest.mark.parametrize("model", MMSEG_MODELS)
def test_transfer_into_an_mmseg_segmentor(tmp_path, model):
    """Fine-tuning loads all but the final projection; auxiliary heads (not pretrained) are
    reported missing and keep their initialisation."""
    torch.manual_seed(0)
    pre = denoiser(model, img_size=(64, 64))
    export_weights(pre, tmp_path / "dep.pth", meta={"arm": "dep"})
    seg = seg_model(model, num_classes=5, img_size=(64, 64), init_from=str(tmp_path / "dep.pth"))
    from ddep.models import transfer_weights
    report = transfer_weights(seg, tmp_path / "dep.pth")
    projection = {"decode_head.conv_seg.weight", "decode_head.conv_seg.bias"}
    aux = {k for k in seg.state_dict() if k.startswith("auxiliary_head.")}
    assert bool(aux) == (model == DEEPLAB)
    assert set(report.skipped) == projection
    assert set(report.missing) == projection | aux
    assert set(report.loaded) == set(pre.state_dict()) - projection
    src, dst = pre.state_dict(), seg.state_dict()
    assert all(torch.equal(src[k], dst[k]) for k in report.loaded)
    assert f"loaded {len(report.loaded)} tensors; skipped 2 (decode_head.conv_seg)" in report.summary()


def test_a_checkpoint_of_another_backbone_gets_one_clear_message(tmp_path):
    """A SegFormer's denoising checkpoint cannot start a DeepLabV3+, nor its backbone a ResNet."""
    from ddep.models import encoder_state_dict, transfer_weights
    from ddep.models.weights import save_atomic
    pre = denoiser(SEGFORMER, img_size=(64, 64))
    export_weights(pre, tmp_path / "segformer.pth")
    seg = seg_model(DEEPLAB, num_classes=5, img_size=(64, 64))
    with pytest.raises(CheckpointError, match=r"segformer\.pth does not fit .*pretrained with "
                                              r"another model"):
        transfer_weights(seg, tmp_path / "segformer.pth", "the DeepLabV3+")
    save_atomic(encoder_state_dict(pre.backbone), tmp_path / "mit.safetensors")
    seg = seg_model(DEEPLAB, num_classes=5, img_size=(64, 64),
                    pretrained=str(tmp_path / "mit.safetensors"))
    with pytest.raises(CheckpointError, match=r"mit\.safetensors do not fit the backbone of .*"
                                              r"ResNetV1c.*a checkpoint of another backbone"):
        seg.init_weights()


@pytest.mark.parametrize("model", MMSEG_MODELS)
def test_supervised_backbone_round_trips_into_segmentor_and_ddep(tmp_path, model):
    """The classifier pools the backbone's last stage; its saved backbone loads, tensor for
    tensor, as the 21K segmentor's and the DDeP denoiser's encoder."""
    from ddep.models import encoder_state_dict
    from ddep.models.weights import save_atomic
    from ddep.configs import segmentor_cfg
    cfg = segmentor_cfg(model, 4, (64, 64))
    clf = MODELS.build(dict(type="ImageClassifier", num_classes=4, backbone=cfg["backbone"],
                            data_preprocessor=dict(cfg["data_preprocessor"], test_cfg=None)))
    assert clf.logits(torch.zeros(2, 3, 64, 64)).shape == (2, 4)
    save_atomic(encoder_state_dict(clf.backbone), tmp_path / "sup.safetensors")
    for built in (seg_model(model, 5, (64, 64), pretrained=str(tmp_path / "sup.safetensors")),
                  denoiser(model, (64, 64), freeze_encoder=True,
                           pretrained=str(tmp_path / "sup.safetensors"))):
        built.init_weights()
        assert all(torch.equal(v, built.backbone.state_dict()[k])
                   for k, v in clf.backbone.state_dict().items())
