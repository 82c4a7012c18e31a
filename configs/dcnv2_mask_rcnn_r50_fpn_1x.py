# Mask R-CNN, ResNet-50 with DCNv2 (modulated) in the 3x3 convs of stages
# c3-c5 + FPN, 1x schedule on COCO (mmcv's deformable conv layers).
_base_ = './_base_/mask_rcnn_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)))
