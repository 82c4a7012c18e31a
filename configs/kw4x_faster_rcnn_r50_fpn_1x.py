# Faster R-CNN, ResNet-50 with KernelWarehouse (4x) + FPN, 1x schedule on
# COCO: the SGD recipe of every other variant (mmdet's 1x), temperature
# fixed at the family's detection value (0).
#
# ImageNet backbone: `checkpoints/kw4x_resnet50_in1k.pth`, from
# projects/classification (tools/model_converters/export_cls_backbone.py)
# or the official KernelWarehouse release
# (tools/model_converters/kw_official_to_backbone.py); train from scratch
# with `--cfg-options model.backbone.init_cfg=None`. The frozen stem and
# first stage also freeze the warehouse cells their convs draw from
# (`freeze_shared_state=True`, the default; docs/kernel_warehouse.md). The
# release's own recipe: `kw4x_mask_rcnn_r50_fpn_adamw_1x.py`.
_base_ = './_base_/faster_rcnn_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        preset='kw4x',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/kw4x_resnet50_in1k.pth')))
