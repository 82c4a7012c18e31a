# Mask R-CNN, static MobileNetV2 1.0 + FPN, 1x schedule on COCO: the
# baseline of the dynamic variants (MobileNetV2 with mmdet's usual
# ImageNet weights `open-mmlab://mmdet/mobilenet_v2`).
_base_ = './_base_/mask_rcnn_mbv2_fpn_1x_coco.py'
