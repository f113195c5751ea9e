# Runtime settings shared by every ddep job: mmseg's defaults plus ddep's modules and hooks.
# The intervals and the seed are per run (the job's schedule and --seed).
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(
    imports=['ddep.models', 'ddep.data.datasets', 'ddep.data.classification',
             'ddep.train.components', 'ddep.train.resume', 'ddep.data.checks'],
    allow_failed_imports=False)
env_cfg = dict(cudnn_benchmark=False)
log_processor = dict(by_epoch=False, window_size=10)
resume = True  # a restarted job continues from the last checkpoint in its work_dir
randomness = dict(seed=0, deterministic=False)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # keeps the resume state (sampler, noise RNG) that mmengine's CheckpointHook drops
    checkpoint=dict(type='ResumableCheckpointHook', by_epoch=False, interval=1000,
                    max_keep_ckpts=1, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='FiniteLossHook'), dict(type='NoiseSeedHook')]
