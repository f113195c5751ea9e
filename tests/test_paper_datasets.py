"""The paper datasets on their real image shapes: sliding-window evaluation gives a prediction of
every label map's size (sizes not divisible by 16 included), and the paper config runs end to
end through Snakemake on Cityscapes, Pascal Context 59 and ADE20K trees laid out and sized as
the real releases."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from ddep.data import DATASET_DEFS
from fake_data import MAKERS, fake_paper_inputs

REPO = Path(__file__).resolve().parents[1]
PAPER_DATASETS = ("cityscapes", "pascal_context59", "ade20k")


@pytest.mark.parametrize("name", PAPER_DATASETS)
def test_real_shape_evaluation_predicts_at_each_label_maps_size(name, tmp_path):
    """mmseg's val pipeline + the fine-tuning model's test mode on every real image shape: the
    crash this catches is 'TransUNet input size must be divisible by 16, got 520x390'."""
    from mmengine.config import ConfigDict
    from mmengine.dataset import pseudo_collate
    from mmseg.registry import DATASETS, MODELS

    from ddep.configs import finetune_config
    from ddep.train.components import PerClassIoUMetric

    MAKERS[name](tmp_path)
    cfg = finetune_config(name, "tiny", tmp_path)  # the val pipeline and model of a fine-tune
    val = DATASETS.build(cfg.val_dataloader.dataset)
    stride = {"cityscapes": (341, 683), "pascal_context59": (320, 320),
              "ade20k": (341, 341)}[name]  # mmseg's 2/3-crop convention
    model = MODELS.build(ConfigDict(cfg.model))
    assert model.test_cfg == dict(mode="slide", crop_size=cfg.crop_size, stride=stride)
    model.init_weights()
    model.eval()
    metric = PerClassIoUMetric(iou_metrics=["mIoU"])
    metric.dataset_meta = val.metainfo
    seen = set()
    for item in val:
        with torch.no_grad():
            [out] = model.test_step(pseudo_collate([item]))
        h, w = out.metainfo["ori_shape"]
        seen.add((w, h))
        assert tuple(out.pred_sem_seg.data.shape[-2:]) == (h, w)
        assert tuple(out.gt_sem_seg.data.shape[-2:]) == (h, w)  # labels at original resolution
        metric.process([], [out.to_dict()])
    assert len(seen) == len(val) or name == "cityscapes"
    assert any(w % 16 or h % 16 for w, h in seen) or name == "cityscapes"
    result = metric.compute_metrics(metric.results)
    assert 0 <= result["mIoU"] <= 100 and len([k for k in result if k.startswith("IoU.")]) == cfg.num_classes


def paper_test_config(tmp_path: Path) -> dict:
    """config/paper.yaml pointed at fake inputs, with the tiny preset, CPU resources, one
    iteration per job, one fraction and seed per dataset, and no sigma sweep (the dry-run test
    covers the sweep's jobs): datasets, arms, crops, unlabelled sources stay the paper's."""
    cfg = fake_paper_inputs(yaml.safe_load((REPO / "config/paper.yaml").read_text()), tmp_path)
    for d in cfg["datasets"].values():
        d["fractions"] = d["fractions"][:1]
    fast = {"iters": 1, "batch_size": 1, "checkpoint_interval": 1, "num_workers": 0}
    cfg.update(preset="tiny", amp="none", threads=1, seeds=[0],
               schedule={"supervised": fast, "denoise": fast, "finetune": fast}, resources={})
    cfg["ablations"] = []
    return cfg


@pytest.mark.slow
def test_paper_config_end_to_end_on_real_shaped_datasets(tmp_path):
    """The paper grid, tiny and short, through Snakemake on all three real-shaped datasets:
    every fine-tune trains and evaluates, and the results and figures are written."""
    for name in ("workflow", "config"):
        shutil.copytree(REPO / name, tmp_path / name)
    cfg = paper_test_config(tmp_path)
    (tmp_path / "config/paper_test.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile",
                           "config/paper_test.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]

    runs = pd.read_csv(tmp_path / "results/runs.csv", keep_default_na=False)
    assert set(runs.dataset) == set(PAPER_DATASETS)
    for name in PAPER_DATASETS:
        sub = runs[runs.dataset == name]
        assert set(sub.arm) == {"none", "21k", "dep", "ddep"}
        assert sub.mIoU.between(0, 100).all()
        # as paper.yaml says: DDeP's decoder learns from ImageNet, DeP from the target images
        weights = tmp_path / "resources/weights" / name / "transunet_tiny"
        ddep_meta = torch.load(weights / "ddep_s0.2.pth", weights_only=True)["meta"]
        dep_meta = torch.load(weights / "dep_s0.2.pth", weights_only=True)["meta"]
        assert Path(ddep_meta["unlabelled"]) == tmp_path / "imagenet" / "train"
        assert Path(dep_meta["unlabelled"]) == \
            tmp_path / "data" / name / DATASET_DEFS[name].splits["train"].img_path
    for f in ("summary.csv", "paired.csv"):
        assert len(pd.read_csv(tmp_path / "results" / f)) > 0
    claims = pd.read_csv(tmp_path / "results/claims.csv")
    assert set(claims.dataset) == set(PAPER_DATASETS)
    assert (claims.n_pairs == 1).all() and (claims.verdict == "not shown (n < 2)").all()
    for name in PAPER_DATASETS:
        assert (tmp_path / f"results/tables/{name}_label_efficiency.md").read_text().strip()
        assert (tmp_path / f"figures/{name}_label_efficiency.png").stat().st_size > 10_000
