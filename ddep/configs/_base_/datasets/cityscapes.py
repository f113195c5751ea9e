# Cityscapes as mmseg's base (crop 512x1024, labelTrainIds maps) with ddep's evaluator.
_base_ = ['mmseg::_base_/datasets/cityscapes.py']
dataset_name = 'cityscapes'
num_classes = 19
# mmseg's IoUMetric, also logging every class's IoU (the run JSON's per_class_iou)
val_evaluator = dict(type='PerClassIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
