# Faster R-CNN, MobileNetV2 1.0 with CondConv (8 experts) + FPN, 1x schedule on COCO.
#
# ImageNet backbone: `checkpoints/condconv8x_mobilenetv2-1.0_in1k.pth`, from
# projects/classification (tools/model_converters/export_cls_backbone.py;
# the official ODConv release has ODConv weights only); train from scratch
# with `--cfg-options model.backbone.init_cfg=None`.
_base_ = './_base_/faster_rcnn_mbv2_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        preset='condconv8x',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/condconv8x_mobilenetv2-1.0_in1k.pth')))
