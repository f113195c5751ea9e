# Cityscapes fine-tuning: PASCAL-Context's 80k schedule (the length of mmseg's
# schedule_80k.py, AdamW) at batch 8, for its 512x1024 crops.
_base_ = ['./pascal_context59_finetune.py']
train_dataloader = dict(batch_size=8)
