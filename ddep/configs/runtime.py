# Runtime settings shared by every ddep job: mmseg's defaults plus ddep's modules.
_base_ = ["mmseg::_base_/default_runtime.py"]

custom_imports = dict(
    imports=["ddep.models", "ddep.data.datasets", "ddep.data.classification",
             "ddep.train.components", "ddep.train.resume", "ddep.data.checks"],
    allow_failed_imports=False)
env_cfg = dict(cudnn_benchmark=False)
log_processor = dict(by_epoch=False, window_size=10)
resume = True  # a restarted job continues from the last checkpoint in its work_dir
