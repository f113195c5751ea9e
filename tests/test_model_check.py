"""The model check: every model of a sweep trains one step per stage and crop before any job,
or is refused with one line; the norm override keeps a model's own norm; heads with several
outputs pretrain; the default TransUNet's configs are what they were."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ddep.sweep import Model
from ddep.sweep_config import load_config

REPO = Path(__file__).resolve().parents[1]
SEGNEXT = "mmseg::segnext/segnext_mscan-t_1xb16-adamw-160k_ade20k-512x512.py"
LRASPP = "mmseg::mobilenet_v3/mobilenet-v3-d8_lraspp_4xb4-320k_cityscapes-512x1024.py"
PIDNET = "mmseg::pidnet/pidnet-s_2xb6-120k_1024x1024-cityscapes.py"


def smoke(models: list) -> dict:
    """config/smoke.yaml with other models and no ablations."""
    cfg = load_config([str(REPO / "config/smoke.yaml")])
    cfg.update(models=models, ablations=[])
    return cfg


def test_the_default_transunets_configs_and_hashes_are_unchanged(tmp_path, monkeypatch):
    """The fine-tune and DeP configs of transunet_tiny on the built-in data, composed as the jobs
    compose them, hash as they did before the norm override kept each head's own norm (values
    from commit a56a6c3, at its recipe), and as the committed run's recipe makes them: CI retrains
    the default run and compares it with results/."""
    from ddep.configs import denoise_config, finetune_config, schedule_config
    from ddep.noise import NoiseConfig
    from ddep.train.jobs import (JobOptions, apply_run, config_hash, denoise_model_overrides,
                                 finetune_model_overrides)
    monkeypatch.chdir(tmp_path)
    opts = JobOptions(work_dir=Path("work/x"), seed=50, channels_last=True)
    cfg = finetune_config("builtin", "tiny", "resources/data/builtin")
    cfg.merge_from_dict(dict(model=finetune_model_overrides(cfg, opts)))
    assert cfg.model.decode_head.norm_cfg == dict(type="BN", requires_grad=True)
    # a pretrained arm's fine-tune at the hand-set recipe (lr 3e-3, encoder x0.1; a56a6c3's hash), and at
    # the setting the committed selection gives it (fa35c7f's, the committed run's)
    sched = schedule_config("builtin", "finetune", lr=0.003, encoder_lr_mult=0.1)
    assert config_hash(apply_run(cfg, opts, sched)) == "803249e3220c"
    selected = yaml.safe_load((REPO / "config/selection/builtin.yaml").read_text())
    setting = selected["settings"]["builtin"]["transunet_tiny"]["1/30"]["ddep"]["setting"]
    assert config_hash(apply_run(cfg, opts, schedule_config("builtin", "finetune", **setting))) == "fe333fff68d3"
    cfg = denoise_config("builtin", "tiny", "resources/data/builtin/img_dir/train")
    cfg.merge_from_dict(dict(model=denoise_model_overrides(cfg, NoiseConfig(), opts, freeze_encoder=False)))
    assert config_hash(apply_run(cfg, opts, schedule_config("builtin", "denoise", lr=1e-3))) == "a239d6585caf"
    assert config_hash(apply_run(cfg, opts, schedule_config("builtin", "denoise"))) == "e374af68a034"


def test_the_norm_override_keeps_the_heads_own_norm(tmp_path):
    from ddep.train.jobs import JobOptions, decoder_norm_cfg
    one, ddp = JobOptions(work_dir=tmp_path), JobOptions(work_dir=tmp_path, launcher="pytorch")
    gn = dict(type="GN", num_groups=32, requires_grad=True)
    assert decoder_norm_cfg(dict(norm_cfg=gn), one) == gn
    assert decoder_norm_cfg(dict(norm_cfg=gn), ddp) == gn
    assert decoder_norm_cfg(dict(norm_cfg=None), one) is None  # a head without norm stays so
    assert decoder_norm_cfg(dict(norm_cfg=dict(type="SyncBN")), one) == dict(type="BN", requires_grad=True)
    # a config naming no norm: the class's own default where that is not BN (Segmenter's LN) ...
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    assert decoder_norm_cfg(dict(type="SegmenterMaskTransformerHead"), one) == dict(type="LN")
    # ... else BN, as ddep always gave it (BaseDecodeHead's default is no norm)
    assert decoder_norm_cfg(dict(type="FCNHead"), one) == dict(type="BN", requires_grad=True)
    # SyncBN only under DDP on GPUs (on CPUs, gloo, it stays BN)
    import torch
    want = "SyncBN" if torch.cuda.is_available() else "BN"
    assert decoder_norm_cfg(dict(norm_cfg=dict(type="BN")), ddp)["type"] == want


def test_a_groupnorm_head_trains_every_stage(tmp_path, monkeypatch):
    """SegNeXt's LightHamHead (GroupNorm) used to get BN's arguments merged into its GN config."""
    from ddep.model_check import check_models
    monkeypatch.setenv("DDEP_MODEL_CHECK_CACHE", str(tmp_path / "cache"))
    result = check_models(smoke([{"name": "segnext_t", "config": SEGNEXT}]))
    assert result.refused == {} and result.steps == 4  # fine-tune, DeP, DDeP, stand-in


def test_a_head_with_several_outputs_pretrains_with_its_final_projection():
    """PIDNet's head returns its P, I and D branches in training; the noise is the I branch's
    (its `conv_seg`, the one it segments with), pixel-shuffled to every pixel."""
    import torch
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    from ddep.configs import denoiser_cfg
    torch.manual_seed(0)
    model = MODELS.build(denoiser_cfg(PIDNET, (64, 128)))
    model.train()
    # batch 2: its DAPPM's BatchNorm sees a 1x1 map, which one image cannot train
    pred = model.predict_noise(torch.zeros(2, 3, 64, 128))
    assert pred.shape == (2, 3, 64, 128) and model.noise_stride == 8
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(type="AdamW", lr=1e-4)))
    images = [torch.randint(0, 256, (3, 64, 128), dtype=torch.uint8) for _ in range(2)]
    samples = [SegDataSample(metainfo=dict(img_shape=(64, 128), ori_shape=(64, 128))) for _ in images]
    loss = model.train_step(dict(inputs=images, data_samples=samples), wrapper)["loss"]
    assert torch.isfinite(loss)


def test_models_that_cannot_train_are_refused_with_one_line_each_and_the_cache_answers_next(
        tmp_path, monkeypatch):
    from ddep.model_check import check_models
    monkeypatch.setenv("DDEP_MODEL_CHECK_CACHE", str(tmp_path / "cache"))
    cfg = smoke([{"name": "lraspp", "config": LRASPP}, {"name": "pidnet_s", "config": PIDNET}])
    first = check_models(cfg)
    assert first.refused == {
        "lraspp": "models (lraspp): refused before any job: its fine-tune at crop 64x128 "
                  "(datasets.builtin) fails: its head pools with a fixed 49-pixel kernel "
                  "(decode_head.image_pool.0) on a 8x16 feature map: give it crops of at least "
                  "392x392 or drop it",
        "pidnet_s": "models (pidnet_s): refused before any job: its fine-tune at crop 64x128 "
                    "(datasets.builtin) fails: its training needs boundary labels (mmseg's "
                    "GenerateEdge transform), which ddep's pipelines do not make: drop it"}
    assert (first.steps, first.cached) == (2, 0)  # a refused model's other steps are not run
    start = time.time()
    again = check_models(cfg)
    assert again.refused == first.refused and again.cached == 2
    assert time.time() - start < first.seconds


def test_query_heads_and_one_size_backbones_are_refused_in_words(tmp_path, monkeypatch):
    """K-Net's and MaskFormer's mask heads, and BEiT fed DDeP's 64x64 images when built for
    64x128: the reason in words, not the library's exception."""
    from ddep.model_check import check_models
    monkeypatch.setenv("DDEP_MODEL_CHECK_CACHE", str(tmp_path / "cache"))
    heads = {"knet": "mmseg::knet/knet-s3_r50-d8_fcn_8xb2-adamw-80k_ade20k-512x512.py",
             "maskformer": "mmseg::maskformer/maskformer_swin-t_upernet_8xb2-160k_ade20k-512x512.py",
             "beit": "mmseg::beit/beit-base_upernet_8xb2-160k_ade20k-640x640.py"}
    refused = check_models(smoke([{"name": k, "config": v} for k, v in heads.items()])).refused
    query = ("its fine-tune at crop 64x128 (datasets.builtin) fails: its decode head is not a "
             "per-pixel head (mmseg's BaseDecodeHead; a query-based mask head): ddep sets the "
             "head's class count and replaces its conv_seg projection: drop it")
    assert refused["knet"] == f"models (knet): refused before any job: {query}"
    assert refused["maskformer"] == f"models (maskformer): refused before any job: {query}"
    assert refused["beit"] == (
        "models (beit): refused before any job: its denoising (ddep) at crop 64x64 images, model "
        "built for 64x128 (datasets.builtin) fails: its backbone takes only the input size it is "
        "built for (64x128), not 64x64 images: leave out the arms that denoise at that size "
        "(ddep) or drop it")


def test_a_vit_stage_with_a_class_token_feeds_the_stand_in():
    """DPT's ViT returns (feature map, class token) per stage: the stand-in pools the map."""
    import torch
    from ddep.models.segmentor import last_feature
    fmap, cls = torch.zeros(1, 8, 4, 4), torch.zeros(1, 8)
    assert last_feature([(fmap, cls), (fmap, cls)]) is fmap
    assert last_feature((fmap,)) is fmap and last_feature(fmap) is fmap


def test_a_crop_large_enough_lets_the_pooling_head_train(tmp_path, monkeypatch):
    """The refusal's advice works: at 392 x 392 the LRASPP head's 49-pixel pooling fits."""
    from ddep.model_check import Step, _step_config, train_step
    cfg = smoke([{"name": "lraspp", "config": LRASPP}])
    cfg["datasets"]["builtin"]["crop_size"] = [392, 392]
    step = Step(Model(LRASPP, "lraspp"), "builtin", "finetune", (392, 392), (392, 392))
    train_step(step, *_step_config(step, cfg)[:1], 1)


def test_snakemake_refuses_a_model_before_any_job(tmp_path):
    """At Snakemake's start (onstart), before the data is generated: one line, no job run."""
    for name in ("workflow", "config"):
        shutil.copytree(REPO / name, tmp_path / name)
    cfg = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    cfg.update(models=["tiny", {"name": "lraspp", "config": LRASPP}], ablations=[])
    (tmp_path / "config/own.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--configfile",
                           "config/own.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    lines = [line for line in out.splitlines() if "refused before any job" in line]
    assert len(lines) == 1 and "models (lraspp)" in lines[0] and "49-pixel kernel" in lines[0], out[-3000:]
    assert not (tmp_path / "resources").exists() and not (tmp_path / "logs").exists(), out[-3000:]
    assert "model check: " in out


def test_a_models_own_checkpoints_and_class_weights_of_another_dataset_are_dropped():
    """BiSeNetV1 names an ImageNet checkpoint in its backbone's own backbone (every arm decides
    its encoder, and a job must not download one); CGNet weighs Cityscapes' 19 classes."""
    from ddep.configs import segmentor_cfg
    bisenet = segmentor_cfg("mmseg::bisenetv1/bisenetv1_r18-d32-in1k-pre_4xb4-160k_cityscapes-1024x1024.py",
                            9, (64, 128))
    assert bisenet["backbone"]["backbone_cfg"]["init_cfg"] is None
    cgnet = segmentor_cfg("mmseg::cgnet/cgnet_fcn_4xb4-60k_cityscapes-680x680.py", 9, (64, 128))
    assert "class_weight" not in cgnet["decode_head"]["loss_decode"]
    cityscapes = segmentor_cfg("mmseg::cgnet/cgnet_fcn_4xb4-60k_cityscapes-680x680.py", 19, (64, 128))
    assert len(cityscapes["decode_head"]["loss_decode"]["class_weight"]) == 19  # where it fits, kept
