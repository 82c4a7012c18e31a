# CPU smoke test of the KernelWarehouse ImageNet recipe: KW (1x) ResNet-18 at
# a quarter of its width (base_channels=16: 16/32/64/128 channels) on the toy
# dataset of `tools/create_toy_imagenet.py` (8 classes, 32 px crops) with the
# recipe's components: AdamW without decay on 1-D parameters and biases,
# linear warm-up then cosine decay, RandAugment, random erasing, mixup /
# CutMix, label smoothing, drop path 0.1 and the temperature annealed
# 1 -> 0 over 2 of 3 epochs. Not a benchmark.
_base_ = '../resnet/kw1x_resnet18_32xb128_in1k.py'

dataset_type = 'CustomDataset'
data_root = 'data/toy_imagenet'

data_preprocessor = dict(num_classes=8)
model = dict(
    backbone=dict(base_channels=16), head=dict(num_classes=8, in_channels=128))

bgr_mean = [103.53, 116.28, 123.675]
bgr_std = [57.375, 57.12, 58.395]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=32,
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(
            pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=bgr_std),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=36,
        edge='short',
        backend='pillow',
        interpolation='bicubic'),
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

optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-6,
        by_epoch=True,
        begin=1,
        end=3,
        T_max=2,
        convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=3)
auto_scale_lr = dict(base_batch_size=8)

custom_hooks = [dict(type='TemperatureAnnealingHook', epochs=2)]
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(max_keep_ckpts=-1))
randomness = dict(seed=0, deterministic=False)
