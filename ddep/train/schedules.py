"""Default training schedules: one row per (dataset, stage). Override any field from the
command line (``--iters``, ``--batch-size``, ``--lr``) or any config key (``--cfg-options``).

The built-in rows are sized for a 2-core CPU with the ``tiny`` preset; the paper rows follow
mmseg's schedules for each dataset (80k/160k iterations) with AdamW as in TransUNet-style
ViT fine-tuning."""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Schedule:
    max_iters: int
    batch_size: int
    lr: float
    weight_decay: float = 0.01
    warmup_iters: int = 0
    encoder_lr_mult: float = 1.0   # fine-tuning: LR factor for a pretrained encoder
    checkpoint_interval: int = 1000
    log_interval: int = 50
    num_workers: int = 4

    def override(self, **changes) -> "Schedule":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_CPU = dict(num_workers=0, log_interval=50)  # tiny images: worker processes cost more than they save
_PAPER_DENOISE = Schedule(max_iters=100_000, batch_size=16, lr=1e-4, weight_decay=0.05,
                          warmup_iters=1500, checkpoint_interval=5000)

SCHEDULES: dict[str, dict[str, Schedule]] = {
    # Sized for the 20-minute default run (docs/tuning.md): a fine-tune sees 1000 labelled
    # samples, about what 120 x 8 did, in twice the updates; that is where the budget goes.
    "builtin": {
        "supervised": Schedule(1000, 16, 1e-3, 0.05, 100, checkpoint_interval=250, **_CPU),
        "denoise": Schedule(1000, 8, 1e-3, 0.05, 100, checkpoint_interval=250, **_CPU),
        "finetune": Schedule(250, 4, 1e-3, 0.01, 12, encoder_lr_mult=0.1,
                             checkpoint_interval=125, **_CPU),
    },
    "cityscapes": {
        "denoise": _PAPER_DENOISE,
        "finetune": Schedule(80_000, 8, 1e-4, 0.01, 1500, checkpoint_interval=8000),
    },
    "ade20k": {
        "denoise": _PAPER_DENOISE,
        "finetune": Schedule(160_000, 16, 1e-4, 0.01, 1500, checkpoint_interval=16000),
    },
    "pascal_context59": {
        "denoise": _PAPER_DENOISE,
        "finetune": Schedule(80_000, 16, 1e-4, 0.01, 1500, checkpoint_interval=8000),
    },
}


def get_schedule(dataset: str, stage: str) -> Schedule:
    rows = SCHEDULES.get(dataset)
    if rows is None or stage not in rows:
        have = sorted(f"{d}/{s}" for d, r in SCHEDULES.items() for s in r)
        raise ValueError(f"no default {stage!r} schedule for dataset {dataset!r} "
                         f"(have: {', '.join(have)})")
    return rows[stage]
