"""The config files under ddep/configs and the config each run saves beside its result, which
must train and test with mmseg's own tools/train.py and tools/test.py."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import MMSEG_MODELS


def test_model_preset_files_match_the_encoder_presets():
    """The decoder's input channels in each preset file are its encoder's widths."""
    from mmengine.config import Config

    from ddep.configs import model_file
    from ddep.models.transunet import PRESETS

    for preset, enc in PRESETS.items():
        model = Config.fromfile(str(model_file(preset))).model
        assert model.backbone.preset == preset
        assert model.decode_head.in_channels == [enc["stem_channels"], *enc["resnet_channels"][:2],
                                                 enc["embed_dim"]]


def test_unknown_model_gets_one_clear_message():
    """A name that is no ddep model file, no mmseg config and no .py file: one message naming
    what exists and the other two forms."""
    from ddep.configs import segmentor_cfg

    with pytest.raises(ValueError, match=r"unknown model 'huge': not a ddep model \(transunet_r50_vit_b16, "
                                         r"transunet_tiny\), an mmseg config .*mmseg::.* or a \.py"):
        segmentor_cfg("huge", 9, (64, 128))
    with pytest.raises(ValueError, match=r"model config mmseg::nope/nope\.py cannot be read"):
        segmentor_cfg("mmseg::nope/nope.py", 9, (64, 128))


def test_a_config_without_a_decode_head_gets_one_clear_message(tmp_path):
    from ddep.configs import segmentor_cfg

    path = tmp_path / "backbone_only.py"
    path.write_text("model = dict(type='EncoderDecoder', backbone=dict(type='ResNetV1c', depth=18))\n")
    with pytest.raises(ValueError, match=r"backbone_only\.py has no decode_head: ddep needs an "
                                         r"encoder-decoder segmentor"):
        segmentor_cfg(str(path), 9, (64, 128))
    # a cascade (OCRNet: two decode heads) is no single decode head either
    with pytest.raises(ValueError, match=r"has a list of decode heads \(a cascade\)"):
        segmentor_cfg("mmseg::ocrnet/ocrnet_hr18s_4xb2-40k_cityscapes-512x1024.py", 9, (64, 128))


def _workflow_schedules() -> list[tuple[str, str]]:
    """The (dataset, stage) pairs the workflow trains: the supervised stand-in (always the
    built-in schedule) and every dataset's denoising pretraining and fine-tuning."""
    from ddep.data.table import DATASET_DEFS
    stages = ("denoise", "finetune")
    return [("builtin", "supervised")] + [(d, s) for d in DATASET_DEFS for s in stages]


def _consistent(sched: dict) -> int:
    """Assert ``sched`` decays to zero at max_iters after its warm-up; return the warm-up."""
    iters = sched["train_cfg"]["max_iters"]
    *warmup, poly = sched["param_scheduler"]
    assert [w["type"] for w in warmup] in ([], ["LinearLR"]) and poly["type"] == "PolyLR"
    assert poly["end"] == iters and poly["eta_min"] == 0
    assert poly["begin"] == (warmup[0]["end"] if warmup else 0)
    assert sched["train_cfg"]["val_begin"] == sched["train_cfg"]["val_interval"] == iters + 1
    return poly["begin"]


def test_every_schedule_the_workflow_uses_is_consistent_and_rescales():
    """Each schedule file the workflow resolves decays to zero at its max_iters; ``--iters``
    moves the decay's end and validation with it, scales the checkpoint interval and cuts the
    warm-up to at most a tenth; the
    cost estimate prices the same iterations and batch size."""
    from ddep.configs import schedule_config, schedule_file
    from ddep.estimate import estimate
    from ddep.sweep_config import RULE_STAGES

    rule = {stage: r for r, stage in RULE_STAGES.items()}
    for dataset, stage in _workflow_schedules():
        path = schedule_file(dataset, stage)
        assert path.stem in (f"{dataset}_{stage}", stage)
        sched = schedule_config(dataset, stage)
        warmup = _consistent(sched)
        assert 0 < warmup <= sched["train_cfg"]["max_iters"] // 10, path
        assert sched["default_hooks"]["checkpoint"]["interval"] <= sched["train_cfg"]["max_iters"]

        short = schedule_config(dataset, stage, iters=37, batch_size=3)
        assert short["train_cfg"]["max_iters"] == 37 and _consistent(short) == min(warmup, 3)
        assert short["train_dataloader"]["batch_size"] == 3
        interval = sched["default_hooks"]["checkpoint"]["interval"]  # as many checkpoints per run
        assert short["default_hooks"]["checkpoint"]["interval"] == max(1, interval * 37 // sched["train_cfg"]["max_iters"])
        assert schedule_config(dataset, stage, iters=37, checkpoint_interval=5)["default_hooks"]["checkpoint"]["interval"] == 5
        assert schedule_config(dataset, stage, iters=9)["param_scheduler"][0]["begin"] == 0

        config = dict(preset="r50_vit_b16", amp="bf16", datasets={dataset: {}})
        for override, (iters, batch) in (
                ({}, (sched["train_cfg"]["max_iters"], sched["train_dataloader"]["batch_size"])),
                ({stage: dict(iters=37, batch_size=3)}, (37, 3))):
            [row] = estimate([dict(rule=rule[stage], dataset=dataset, arm="dep")],
                             dict(config, schedule=override), "H100")
            assert row["images"] == iters * batch, path


def test_missing_schedule_names_the_files_that_exist():
    from ddep.configs import schedule_file

    with pytest.raises(ValueError, match=r"cityscapes_supervised\.py nor supervised\.py exists "
                                         r"\(have: ade20k_finetune, builtin_denoise, .*denoise, "):
        schedule_file("cityscapes", "supervised")
    with pytest.raises(ValueError, match=r"datasets/camvid\.py.*have: ade20k, builtin"):
        schedule_file("camvid", "denoise")


def test_config_hash_does_not_depend_on_where_the_checkout_is(tmp_path, monkeypatch):
    from ddep.configs import finetune_config, schedule_config
    from ddep.train.jobs import JobOptions, apply_run, config_hash

    def hashed(checkout: Path) -> str:
        (checkout / "resources").mkdir(parents=True)
        monkeypatch.chdir(checkout)
        cfg = finetune_config("builtin", "tiny", checkout / "resources" / "data")
        cfg.train_dataloader.dataset.ann_file = str(checkout / "resources" / "split.txt")
        opts = JobOptions(work_dir=checkout / "work", seed=5)
        return config_hash(apply_run(cfg, opts, schedule_config("builtin", "finetune")))

    assert hashed(tmp_path / "a") == hashed(tmp_path / "elsewhere" / "b")


def test_a_configs_text_is_formatted_once_and_as_yapf_formats_it(tmp_path, monkeypatch):
    """ddep.compat formats each config text once (mmengine reformats it on every read of
    pretty_text); the text is yapf's, and a changed config is formatted anew."""
    from yapf.yapflib import yapf_api

    from ddep import compat
    from ddep.configs import finetune_config

    calls = []
    monkeypatch.setattr(compat, "_yapf_format_code",
                        lambda *a, **k: calls.append(a[0]) or yapf_api.FormatCode(*a, **k))
    compat._format_code.cache_clear()
    cfg = finetune_config("builtin", "tiny", tmp_path)
    texts = {cfg.pretty_text for _ in range(3)}
    assert len(calls) == 1 and len(texts) == 1
    style = dict(based_on_style="pep8", blank_line_before_nested_class_or_def=True,
                 split_before_expression_after_opening_paren=True)  # mmengine's
    assert texts == {yapf_api.FormatCode(calls[0], style_config=style)[0]}
    cfg.merge_from_dict(dict(work_dir=str(tmp_path / "other")))
    assert "other" in cfg.pretty_text and len(calls) == 2
    compat._format_code.cache_clear()


def test_amp_picks_the_optimizer_wrapper_this_machine_runs(tmp_path, monkeypatch):
    """--amp: mmengine's AmpOptimWrapper on a GPU; on a CPU bf16 autocast through
    CPUBF16OptimWrapper, and fp16 refused with a message that says what works."""
    import ddep.train.jobs as jobs
    from ddep.configs import finetune_config, schedule_config

    def wrapper(amp: str) -> dict:
        cfg = finetune_config("builtin", "tiny", tmp_path / "data")
        opts = jobs.JobOptions(work_dir=tmp_path / "work", seed=5, amp=amp)
        return jobs.apply_run(cfg, opts, schedule_config("builtin", "finetune")).optim_wrapper

    monkeypatch.setattr(jobs, "_cuda", lambda: False)
    assert wrapper("none").type == "OptimWrapper" and wrapper("bf16").type == "CPUBF16OptimWrapper"
    assert wrapper("bf16").optimizer.type == "AdamW"  # the schedule's optimizer is kept
    with pytest.raises(ValueError, match="--amp fp16 needs a GPU; on a CPU use --amp bf16 or none"):
        wrapper("fp16")
    monkeypatch.setattr(jobs, "_cuda", lambda: True)
    assert (wrapper("bf16").type, wrapper("bf16").dtype) == ("AmpOptimWrapper", "bfloat16")
    assert wrapper("fp16").dtype == "float16"


def _mmseg_tool(name: str) -> str:
    import mmseg
    return str(Path(mmseg.__file__).parent / ".mim" / "tools" / f"{name}.py")


def _run(*args: object) -> str:
    proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tiny", *MMSEG_MODELS])
def test_saved_config_trains_and_tests_with_plain_mmseg(tmp_path, model):
    """A fine-tune saves seed0.py beside seed0.json; mmseg's tools/train.py trains it as it is
    and tools/test.py evaluates the checkpoint to the job's own mIoU (same seed, same config),
    for the TransUNet and for mmseg's own models."""
    data, split = tmp_path / "data", tmp_path / "split.txt"
    _run("-m", "ddep.cli", "generate-builtin", "--root", data, "--n-train", 8, "--n-val", 2,
         "--n-unlabelled", 2, "--n-source-train", 2, "--n-source-val", 2)
    _run("-m", "ddep.cli", "split", "--dataset", "builtin", "--data-root", data, "--fraction", 4,
         "--out", split)
    out = tmp_path / "runs" / "seed0.json"
    _run("-m", "ddep.cli", "finetune", "--arm", "none", "--dataset", "builtin", "--data-root", data,
         "--split", split, "--iters", 2, "--batch-size", 2, "--out", out, "--work-dir", tmp_path / "job",
         "--model", model)
    saved = out.with_suffix(".py")
    assert saved.is_file() and "custom_imports" in saved.read_text()

    work = tmp_path / "plain"
    _run(_mmseg_tool("train"), saved, "--work-dir", work)
    checkpoint = work / "iter_2.pth"
    assert checkpoint.is_file()
    log = _run(_mmseg_tool("test"), saved, checkpoint, "--work-dir", tmp_path / "plain_test")
    miou = float(re.findall(r"mIoU: ([0-9.]+)", log)[-1])
    assert miou == json.loads(out.read_text())["mIoU"]


def test_the_readme_states_the_miniatures_proportions_as_configured():
    """The README's table of the built-in miniature (beside the paper's) says what
    config/config.yaml, the built-in schedules and the tiny model are."""
    import yaml
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import ddep.models  # noqa: F401  (registers the TransUNet)
    from ddep.configs import schedule_config
    from ddep.configs.compose import segmentor_cfg
    from ddep.data import split_size
    from ddep.data.source import SOURCE_CLASSES

    repo = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((repo / "config/config.yaml").read_text())
    builtin = cfg["datasets"]["builtin"]
    n_train, n_source = builtin["generate"]["n_train"], builtin["generate"]["n_source_train"]
    (f1, f2), (n1, n2) = builtin["fractions"], [split_size(f, n_train) for f in builtin["fractions"]]

    def samples(stage):
        s = schedule_config("builtin", stage)
        return s["train_cfg"]["max_iters"], s["train_dataloader"]["batch_size"]

    init_default_scope("mmseg")
    model = MODELS.build(segmentor_cfg(cfg["preset"], 9, (64, 128)))
    enc, dec = (sum(p.numel() for p in part.parameters()) for part in (model.backbone, model.decode_head))
    (si, sb), (di, db), (fi, fb) = samples("supervised"), samples("denoise"), samples("finetune")
    expected = [
        f"{f1} of {n_train} = {n1}; {f2} = {n2}",
        f"{n_source:,} images, {len(SOURCE_CLASSES)} classes",
        f"| {n_source // n1:,} |",
        f"the {n_train} train images ({n_train // n1} per labelled image)",
        f"the {n_source:,} source images",
        f"{enc / 1e6:.2f}M / {dec / 1e6:.2f}M (decoder {100 * dec / (enc + dec):.1f}%)",
        f"{si} × {sb} = {si * sb:,} ({si * sb / n_source:.1f} epochs)",
        f"{di} × {db} = {di * db:,}",
        f"{fi} × {fb} = {fi * fb:,} ({fi * fb // n1} passes over {n1} images)",
    ]
    # Random init's full-label mean and its ratio at the smallest fraction, from the committed run
    summary = pd.read_csv(repo / "results/summary.csv", dtype={"label_fraction": str})
    none = summary[(summary["arm"] == "none") & (summary["model"] == "transunet_tiny")]
    full, small = (none.loc[none["label_fraction"] == f, ["mIoU_mean", "n"]].iloc[0] for f in (f2, f1))
    expected += [f"{full.mIoU_mean:.1f} (mean of {int(full.n)} seeds)",
                 f"{small.mIoU_mean:.1f} / {full.mIoU_mean:.1f} = {small.mIoU_mean / full.mIoU_mean:.2f}"]
    readme = (repo / "README.md").read_text()
    assert not [e for e in expected if e not in readme], [e for e in expected if e not in readme]
