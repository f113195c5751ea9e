# The built-in street scenes (ddep.data.builtin): generated, so no mmseg base; written like
# mmseg's _base_/datasets files. The job sets data_root and the train split's ann_file.
dataset_name = 'builtin'
dataset_type = 'BuiltinStreetDataset'
data_root = 'resources/data/builtin'
num_classes = 9  # len(ddep.data.builtin.BUILTIN_CLASSES)
crop_size = (64, 128)  # (h, w): the whole generated image
img_scale = (128, 64)  # (w, h)
# Light augmentation: the generator already varies camera and photometry, and mmseg's
# PhotoMetricDistortion and 0.5-2x rescaling slowed learning on 64 x 128 images (docs/tuning.md,
# section 11).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# batch size and workers: the job's schedule (_base_/schedules/builtin_*.py)
train_dataloader = dict(
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# mmseg's IoUMetric, also logging every class's IoU (the run JSON's per_class_iou)
val_evaluator = dict(type='PerClassIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
