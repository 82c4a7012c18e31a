# Mask R-CNN, MobileNetV2 1.0 + FPN, 1x, with the KernelWarehouse release's
# COCO recipe (see `mask_rcnn_r50_fpn_adamw_1x_coco.py`: AdamW, decay
# exemptions, multi-scale crops, warehouse cells never frozen).
#
# The backbone of `mask_rcnn_mbv2_fpn_1x_coco.py` (same FPN taps: the ends
# of stages 2, 3, 5 and the final 1x1 conv, 24 / 32 / 96 / 1280 channels,
# the release's `out_indices=(1, 2, 3, 4)`), frozen as the release freezes
# it. The release's `frozen_stages=1` freezes its `features[0]` to
# `features[3]` (`stage_idx[1] = 3`): the stem, the one block of stage 1
# and the two blocks of stage 2. mmdet's MobileNetV2 freezes the stem and
# `layer1`..`layer<frozen_stages>`, so the same convs are frozen at
# `frozen_stages=2`.
#
# ImageNet weights: the release's MobileNetV2 1.0 (`mobilenetv2_100.json`,
# 150 epochs, 72.04 top-1) converted to
# `checkpoints/mobilenetv2-1.0_kw-recipe_in1k.pth` with
# tools/model_converters/kw_official_to_backbone.py (or trained with that
# recipe in projects/classification).
_base_ = './mask_rcnn_r50_fpn_adamw_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='DynamicMobileNetV2',
        preset='static',
        temperature=None,
        widen_factor=1.0,
        out_indices=(1, 2, 4, 7),
        frozen_stages=2,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        freeze_shared_state=False,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/mobilenetv2-1.0_kw-recipe_in1k.pth')),
    neck=dict(in_channels=[24, 32, 96, 1280]))
