# Built-in supervised encoder (the ImageNet-21k stand-in: a classifier of the source set's 24
# classes), sized for the 20-minute default run on a 2-core CPU with the tiny preset
# (docs/tuning.md, sections 9-10): 800 x 32 at 64 x 64.
# ddep's --iters, --batch-size, --lr, ... change a copy (ddep.configs.schedule_config).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05))
# linear warm-up, then linear (poly, power 1) decay to zero
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=80),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=80, end=800, by_epoch=False)
]
# val_begin past max_iters: validation runs once, after training, not also at max_iters
train_cfg = dict(type='IterBasedTrainLoop', max_iters=800, val_begin=801, val_interval=801)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=200))
# tiny images: worker processes cost more than they save
train_dataloader = dict(batch_size=32, num_workers=0, persistent_workers=False)
