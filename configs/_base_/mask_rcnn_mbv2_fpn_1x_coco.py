# Mask R-CNN, MobileNetV2 1.0 + FPN, 1x schedule on COCO.
#
# Same backbone and FPN taps as `faster_rcnn_mbv2_fpn_1x_coco.py`: stages
# 2, 3, 5 and the final 1x1 conv (24, 32, 96, 1280 channels), stem and first
# stage frozen, BatchNorm statistics fixed.
_base_ = './mask_rcnn_r50_fpn_1x_coco.py'

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
