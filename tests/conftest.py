"""Every test builds modules through mmseg's registries, as the runner does (default scope mmseg).

One OpenMP thread per test process (and the jobs it starts, unless Snakemake sets a job's own):
CI runs two test files at a time (pytest-xdist), one per core, and two-thread torch processes
side by side spin-wait for each other's cores."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported
from mmseg.utils import register_all_modules

import ddep.models  # noqa: F401  (registers ddep's modules)

register_all_modules(init_default_scope=True)

# The longest files (CI: about 10-15 minutes each) start first, so that the two workers of
# `pytest -n 2 --dist loadfile` end together instead of one waiting for the other's last file.
LONGEST_FIRST = ("test_reproduce.py", "test_paper_datasets.py", "test_slurm.py", "test_faults.py")


def pytest_collection_modifyitems(items: list) -> None:
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable: the order within a rank is kept
