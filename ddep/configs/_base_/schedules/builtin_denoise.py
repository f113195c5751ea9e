# Built-in denoising pretraining (DeP / DDeP): the supervised encoder's schedule, sized for the
# 20-minute default run (docs/tuning.md), at batch 8: 1000 x 8.
_base_ = ['./builtin_supervised.py']
train_dataloader = dict(batch_size=8)
