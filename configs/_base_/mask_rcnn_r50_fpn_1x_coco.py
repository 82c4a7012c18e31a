# Mask R-CNN, ResNet-50 + FPN, 1x schedule (12 epochs) on COCO.
#
# MMDetection's own config (model, COCO instance data, 1x schedule, runtime)
# plus the plugin import, so that dynamic backbones can be named above it.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

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
# before anything is saved; validation and testing stop, before evaluating,
# when the raw predictions hold NaN or infinity (which NMS would drop
# silently) (dynconv_mmdet/engine/hooks).
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook'),
    finite_loss=dict(type='CheckFiniteLossHook'),
    finite_predictions=dict(type='CheckFinitePredictionsHook'))

# mmdet's COCO pipelines, unchanged: their `LoadImageFromFile` is the name
# mmdet's DetInferencer and mmdeploy look for, and SafeLoadRunner loads the
# images of training, validation and testing with CheckedLoadImageFromFile
# (the same loader, whose errors name the image file it cannot read).

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
