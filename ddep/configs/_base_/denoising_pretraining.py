# Denoising pretraining (DeP / DDeP) on a folder of unlabelled images. The job adds the
# preset's denoiser (ddep.configs.denoiser_cfg, model type DenoisingPretrainer), the images'
# folder and the dataset's training geometry, the noise setting (ddep.noise) and a schedule.
_base_ = ['./default_runtime.py']
train_dataloader = dict(
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='UnlabelledImageDataset'))
# DDeP freezes the encoder: the optimizer gets only the parameters that train
optim_wrapper = dict(constructor='TrainableOnlyOptimWrapperConstructor')
