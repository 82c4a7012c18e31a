# Faster R-CNN, MobileNetV2 1.0 + FPN, 1x schedule on COCO.
#
# The ResNet-50 recipe with the backbone swapped for MobileNetV2 (our
# DynamicMobileNetV2, preset 'static' here: mmdet's MobileNetV2 whose
# ImageNet weights are loaded strictly, whatever their key layout). The
# FPN taps the outputs of stages 2, 3 and 5 and of the final 1x1 conv (strides 4, 8, 16, 32; 24, 32, 96 and 1280 channels), the
# same features as the released ODConv detectors (features 3, 6, 13, 18).
# As for ResNet-50, the stem and the first stage are frozen and BatchNorm
# statistics stay fixed (2 images per GPU are too few to estimate them).
_base_ = './faster_rcnn_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='DynamicMobileNetV2',
        preset='static',
        temperature=None,
        widen_factor=1.0,
        out_indices=(1, 2, 4, 7),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained', checkpoint='open-mmlab://mmdet/mobilenet_v2')),
    neck=dict(in_channels=[24, 32, 96, 1280]))
