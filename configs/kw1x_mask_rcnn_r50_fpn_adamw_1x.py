# Mask R-CNN, ResNet-50 with KernelWarehouse (1x) + FPN, 1x, with the
# KernelWarehouse release's COCO recipe (AdamW, multi-scale crops, warehouse
# cells never frozen, drop path 0.1 as the release's KW ResNet; see
# the base). The SGD recipe:
# `kw1x_mask_rcnn_r50_fpn_1x.py`.
#
# ImageNet backbone: `checkpoints/kw1x_resnet50_in1k.pth`, from
# projects/classification (tools/model_converters/export_cls_backbone.py) or
# the official KernelWarehouse release
# (tools/model_converters/kw_official_to_backbone.py); train from scratch with
# `--cfg-options model.backbone.init_cfg=None`.
_base_ = './_base_/mask_rcnn_r50_fpn_adamw_1x_coco.py'

model = dict(
    backbone=dict(
        preset='kw1x',
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/kw1x_resnet50_in1k.pth')))
