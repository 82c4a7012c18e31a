# Mask R-CNN, ResNet-50 + FPN, 1x schedule (12 epochs) on COCO.
#
# MMDetection's own config (model, COCO instance data, 1x schedule, runtime)
# plus the plugin import, so that dynamic backbones can be named above it.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['dynconv_mmdet'], allow_failed_imports=False)

# The 1x schedule is defined for 16 images per iteration (8 GPUs x 2).
# Pass `--auto-scale-lr` to tools/train.py to scale it to another batch.
auto_scale_lr = dict(enable=False, base_batch_size=16)

# The backbone is our DynamicResNet: mmdet's ResNet-50 (same keys, frozen
# stem + stage 1, BN in eval) whose preset chooses the dynamic convs and
# which loads its ImageNet weights strictly. `static` with torchvision's
# weights is the baseline; the dynamic configs change `preset` and
# `init_cfg`. Temperature fixed at 1: no annealing in detection.
model = dict(
    backbone=dict(
        type='DynamicResNet',
        preset='static',
        temperature=1.0,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))
