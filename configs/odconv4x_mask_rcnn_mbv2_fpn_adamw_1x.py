# Mask R-CNN, MobileNetV2 1.0 with ODConv (4 kernels) + FPN, 1x, with the
# KernelWarehouse release's COCO recipe (AdamW, multi-scale crops, warehouse
# cells never frozen; see the base). The SGD recipe:
# `odconv4x_mask_rcnn_mbv2_fpn_1x.py`.
#
# The release publishes no ODConv detector; this config trains ODConv on the
# same recipe as the KernelWarehouse variants.
#
# ImageNet backbone: `checkpoints/odconv4x_mobilenetv2-1.0_in1k.pth`, from
# projects/classification (tools/model_converters/export_cls_backbone.py) or
# the official ODConv release
# (tools/model_converters/odconv_official_to_backbone.py); train from scratch
# with `--cfg-options model.backbone.init_cfg=None`.
_base_ = './_base_/mask_rcnn_mbv2_fpn_adamw_1x_coco.py'

model = dict(
    backbone=dict(
        preset='odconv4x',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/odconv4x_mobilenetv2-1.0_in1k.pth')))
