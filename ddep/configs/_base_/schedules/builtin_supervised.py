# Built-in supervised encoder (the ImageNet-21k stand-in: a classifier of the source set's 24
# classes): 1500 x 64 at lr 2e-3 and 64 x 64, the shortest schedule tried whose held-out top-1
# passed 0.6 (docs/tuning.md, section 11). ddep's --iters, --batch-size, --lr, ... change a copy
# (ddep.configs.schedule_config).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.999), weight_decay=0.05))
# linear warm-up, then linear (poly, power 1) decay to zero
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=80),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=80, end=1500, by_epoch=False)
]
# val_begin past max_iters: validation runs once, after training, not also at max_iters
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1500, val_begin=1501, val_interval=1501)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=375))
# tiny images: worker processes cost more than they save
train_dataloader = dict(batch_size=64, num_workers=0, persistent_workers=False)
