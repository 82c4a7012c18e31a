# Faster R-CNN, ResNet-50 with CondConv (8 experts) + FPN, COCO 1x.
#
# Temperature fixed at 1 (no annealing in detection). The ImageNet
# backbone `checkpoints/condconv8x_resnet50_in1k.pth` comes from
# projects/classification or from the official release converted with
# tools/model_converters (see docs); to train from scratch instead pass
# `--cfg-options model.backbone.init_cfg=None`.
_base_ = './_base_/faster_rcnn_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='DynamicResNet',
        depth=50,
        preset='condconv8x',
        temperature=1.0,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/condconv8x_resnet50_in1k.pth')))
