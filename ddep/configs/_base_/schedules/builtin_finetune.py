# Built-in fine-tuning: 500 x 4 at lr 3e-3, long enough that a random-init fine-tune on every
# label is near its plateau (500 iterations reach 0.85 of what 2,000 reach, development seed 100;
# 400 fall under 50 mIoU) and the default run fits 30 minutes on a 2-core CPU (docs/tuning.md,
# section 11). One checkpoint, at the end. ddep's --iters, --batch-size, --lr, ... change a copy
# (ddep.configs.schedule_config).
# Every arm alike: the tuning stage's selection (config `tuning`, ddep.tuning) sets each arm's
# learning rate and encoder LR factor; without it every arm trains at this one.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-3, betas=(0.9, 0.999), weight_decay=0.01))
# linear warm-up, then linear (poly, power 1) decay to zero
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=8),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=8, end=500, by_epoch=False)
]
# val_begin past max_iters: validation runs once, after training, not also at max_iters
train_cfg = dict(type='IterBasedTrainLoop', max_iters=500, val_begin=501, val_interval=501)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=500))
# tiny images: worker processes cost more than they save
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
