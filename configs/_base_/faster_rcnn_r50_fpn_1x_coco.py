# Faster R-CNN, ResNet-50 + FPN, 1x schedule (12 epochs) on COCO.
#
# Everything (model, COCO data pipeline, SGD lr 0.02 for 16 images with
# 500-iteration linear warm-up and x0.1 at epochs 8 and 11, runtime) comes
# from MMDetection's own config; this base only registers the plugin so that
# the dynamic-convolution backbones can be named in the configs above it.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

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
