# Faster R-CNN, MobileNetV2 1.0 with ODConv (4 kernels) + FPN, COCO 1x.
#
# Temperature fixed at 1 (no annealing in detection). The ImageNet
# backbone `checkpoints/odconv4x_mobilenetv2-1.0_in1k.pth` comes from
# projects/classification or from the official release converted with
# tools/model_converters (see docs); to train from scratch instead pass
# `--cfg-options model.backbone.init_cfg=None`.
_base_ = './_base_/faster_rcnn_mbv2_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='DynamicMobileNetV2',
        widen_factor=1.0,
        out_indices=(1, 2, 4, 7),
        preset='odconv4x',
        temperature=1.0,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/odconv4x_mobilenetv2-1.0_in1k.pth')))
