# Mask R-CNN, static ResNet-50 + FPN, 1x, with the KernelWarehouse
# release's COCO recipe (AdamW, multi-scale crops; see the base): the
# baseline of the `*_mask_rcnn_r50_fpn_adamw_1x.py` variants, from the
# release's own ImageNet weights (see the base). The SGD recipe:
# `mask_rcnn_r50_fpn_1x.py`.
_base_ = './_base_/mask_rcnn_r50_fpn_adamw_1x_coco.py'
