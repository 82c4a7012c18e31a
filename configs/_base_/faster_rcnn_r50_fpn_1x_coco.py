# Faster R-CNN, ResNet-50 + FPN, 1x schedule (12 epochs) on COCO.
#
# Everything (model, COCO data pipeline, SGD lr 0.02 for 16 images with
# 500-iteration linear warm-up and x0.1 at epochs 8 and 11, runtime) comes
# from MMDetection's own config; this base only registers the plugin so that
# the dynamic-convolution backbones can be named in the configs above it.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['dynconv_mmdet'], allow_failed_imports=False)

# Checkpoints (tools/test.py, load_from, --resume) are read with
# weights_only=True and must fit the model exactly, or the run stops listing
# the missing, unexpected and mis-shaped keys. `strict_load = False` (or
# `tools/test.py --partial-load`) loads only what fits instead.
runner_type = 'SafeLoadRunner'
strict_load = True

# The 1x schedule is defined for 16 images per iteration (8 GPUs x 2).
# Pass `--auto-scale-lr` to tools/train.py to scale it to another batch.
auto_scale_lr = dict(enable=False, base_batch_size=16)

# Checkpoints are written atomically (a run killed while saving or a full
# disk never leaves a truncated file nor loses the previous checkpoint) and
# training stops at the first iteration whose loss is NaN or infinite,
# before anything is saved (dynconv_mmdet/engine/hooks).
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook'),
    finite_loss=dict(type='CheckFiniteLossHook'))

# mmdet's COCO pipelines with our image loader, which names the image file
# it cannot read or decode (mmcv's LoadImageFromFile does not).
backend_args = None
train_pipeline = [
    dict(type='CheckedLoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# The backbone is our DynamicResNet: mmdet's ResNet-50 (same keys, frozen
# stem + stage 1, BN in eval) whose preset chooses the dynamic convs and
# which loads its ImageNet weights strictly. `static` with torchvision's
# weights is the baseline; the dynamic configs change `preset` and
# `init_cfg`. The temperature is fixed at each family's detection value
# (`temperature=None`: DyConv / ODConv 1, KernelWarehouse 0): no annealing
# in detection.
model = dict(
    backbone=dict(
        type='DynamicResNet',
        preset='static',
        temperature=None,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))
