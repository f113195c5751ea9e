# Built-in denoising pretraining (DeP / DDeP): AdamW at lr 3e-2, 600 x 8. The learning rate is the
# best held-out denoising loss at this cost for both denoisers (docs/tuning.md, section 13); a
# dataset's `denoise_schedule` lengthens an arm's run to its plateau (config/config.yaml: DDeP).
_base_ = ['./builtin_supervised.py']
optim_wrapper = dict(optimizer=dict(lr=3e-2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=60),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=60, end=600, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=600, val_begin=601, val_interval=601)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=200))
train_dataloader = dict(batch_size=8)
