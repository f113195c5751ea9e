# PASCAL-Context 59 fine-tuning (Cityscapes: the same at batch 8): 80000 x 16, the length of
# mmseg's schedule_80k.py, with AdamW (as in TransUNet-style ViT fine-tuning) instead of its SGD.
# ddep's --iters, --batch-size, --lr, ... change a copy (ddep.configs.schedule_config).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01))
# linear warm-up, then linear (poly, power 1) decay to zero
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=80000, by_epoch=False)
]
# val_begin past max_iters: validation runs once, after training, not also at max_iters
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=80000, val_begin=80001, val_interval=80001)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=8000))
train_dataloader = dict(batch_size=16, num_workers=4, persistent_workers=True)
