# Mask R-CNN, ResNet-50 with ODConv (1 kernel) + FPN, 1x schedule on COCO.
#
# ImageNet backbone: `checkpoints/odconv1x_resnet50_in1k.pth`, from
# projects/classification (tools/model_converters/export_cls_backbone.py)
# or the official ODConv release (odconv_official_to_backbone.py); train
# from scratch with `--cfg-options model.backbone.init_cfg=None`.
_base_ = './_base_/mask_rcnn_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        preset='odconv1x',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/odconv1x_resnet50_in1k.pth')))
