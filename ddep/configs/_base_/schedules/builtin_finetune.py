# Built-in fine-tuning, sized for the 20-minute default run on a 2-core CPU with the tiny
# preset (docs/tuning.md, sections 9-10): 80 x 4 sees 320 labelled samples; 40 of them are
# most of the budget. One checkpoint, at the end: a save costs about 1 s of a 20-s job.
# ddep's --iters, --batch-size, --lr, ... change a copy (ddep.configs.schedule_config).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01),
    # a pretrained encoder learns at 1/10 of the LR (arm 'none', random init, drops this)
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
# linear warm-up, then linear (poly, power 1) decay to zero
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=8),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=8, end=80, by_epoch=False)
]
# val_begin past max_iters: validation runs once, after training, not also at max_iters
train_cfg = dict(type='IterBasedTrainLoop', max_iters=80, val_begin=81, val_interval=81)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=80))
# tiny images: worker processes cost more than they save
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
