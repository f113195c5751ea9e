"""Every test builds modules through mmseg's registries, as the runner does (default scope mmseg).

One OpenMP thread per test process (and the jobs it starts, unless Snakemake sets a job's own):
CI runs two test files at a time (pytest-xdist), one per core, and two-thread torch processes
side by side spin-wait for each other's cores."""
import importlib.util
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported
from mmseg.utils import register_all_modules

import ddep.models  # noqa: F401  (registers ddep's modules)

register_all_modules(init_default_scope=True)

# `pytest -n 2 --dist loadfile` hands out files in this order, the longest first, so the two
# workers end together. xdist queues a second file behind the first one-test file at once, so a
# quick file follows the reproduction test (the rest go to whichever worker is free first).
FIRST = ("test_reproduce.py", "test_slurm.py", "test_sweep.py", "test_paper_datasets.py",
         "test_workflow.py", "test_faults.py", "test_train.py", "test_configs.py")


def pytest_configure(config) -> None:
    if hasattr(config.option, "loadscopereorder"):  # xdist would reorder by test count
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list) -> None:
    def rank(item) -> int:
        return FIRST.index(item.path.name) if item.path.name in FIRST else len(FIRST)
    items.sort(key=rank)  # stable: the order within a file is kept

# Two mmseg models beside the TransUNet, as config/models.yaml names them: a transformer
# (SegFormer MiT-B0, its head at stride 4) and a CNN with BatchNorm and an auxiliary head
# (DeepLabV3+ ResNet-18).
SEGFORMER = "mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py"
DEEPLAB = "mmseg::deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py"
MMSEG_MODELS = [SEGFORMER, DEEPLAB]
# A backbone from mmpretrain (ddep's optional extra): mmseg's config imports it (custom_imports).
CONVNEXT = "mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py"
HAS_MMPRETRAIN = importlib.util.find_spec("mmpretrain") is not None
