# CPU smoke test of the ImageNet pipeline: ODConv 1x ResNet-18 at a quarter
# of its width (base_channels=16: 16/32/64/128 channels) on the toy dataset of
# `tools/create_toy_imagenet.py` (8 classes, 32 px crops), with the
# temperature annealed over 2 of 3 epochs. Not a benchmark.
_base_ = '../resnet/odconv1x_resnet18_8xb32_in1k.py'

dataset_type = 'CustomDataset'
data_root = 'data/toy_imagenet'

data_preprocessor = dict(num_classes=8)
model = dict(
    backbone=dict(base_channels=16), head=dict(num_classes=8, in_channels=128))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=36, edge='short'),
    dict(type='CenterCrop', crop_size=32),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        data_prefix='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        data_prefix='val',
        pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = dict(milestones=[2])
train_cfg = dict(max_epochs=3)
auto_scale_lr = dict(base_batch_size=8)

custom_hooks = [
    dict(type='TemperatureAnnealingHook', start=30.0, end=1.0, epochs=2)
]
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(max_keep_ckpts=-1))
randomness = dict(seed=0, deterministic=False)
