# Faster R-CNN, static ResNet-50 + FPN, 1x schedule on COCO: the
# baseline of the dynamic variants (ImageNet weights
# `torchvision://resnet50`).
_base_ = './_base_/faster_rcnn_r50_fpn_1x_coco.py'
