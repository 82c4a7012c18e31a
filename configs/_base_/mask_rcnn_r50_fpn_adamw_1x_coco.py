# Mask R-CNN, ResNet-50 + FPN, 1x, with the KernelWarehouse release's COCO
# recipe: the recipe of its published detectors (OSVAI/KernelWarehouse,
# `detection/configs/kernelwarehouse/*/mask_rcnn_*_adamw_1x_coco.py`, run
# on an mmdet 2.11 fork), written for mmdet 3.x. The `*_adamw_1x.py`
# configs above this file (and `mask_rcnn_mbv2_fpn_adamw_1x_coco.py`) only
# choose the backbone preset and its ImageNet weights.
#
# What differs from our SGD 1x base (`mask_rcnn_r50_fpn_1x_coco.py`):
# - AdamW, lr 1e-4 for 16 images (8 GPUs x 2), betas (0.9, 0.999), weight
#   decay 0.05; no gradient clipping, fp32. The schedule is mmdet's 1x,
#   which is also the release's: linear warm-up over 500 iterations from
#   0.001, x0.1 at epochs 8 and 11, 12 epochs.
# - Weight decay exemptions as the release's `custom_keys` act. The release
#   lists 'absolute_pos_embed', 'relative_position_bias_table' (Swin
#   leftovers) and 'norm' with `decay_mult=0`; mmcv 1.x (as mmengine)
#   matches a key as a substring of the full parameter name. Its ResNets
#   name their BatchNorms `bn1`-`bn3` and `downsample.1`, its MobileNetV2
#   `features.<i>.<j>`, and the FPN and heads have none, so 'norm' matches
#   exactly the KernelWarehouse attention's `attention.norm1` (weight and
#   bias of every KW conv). Our backbones keep that name, and their own
#   norms contain no 'norm' either (`bn1`, `conv1.bn`, ...); the key below
#   names what it matches. Static and ODConv backbones have no such
#   parameter (ODConv's attention norm is `attention.bn`, here as in its
#   official code): every parameter is decayed, as with the release's keys.
# - Multi-scale training with random crops (DETR / Sparse R-CNN), mmdet
#   3.x's form of the release's AutoAugment: flip, then either a resize to
#   a short side of 480-800 (step 32, long side <= 1333), or a resize to
#   400 / 500 / 600, a random crop of 384-600 px and that same resize.
# - The backbone as the release trains it: stem and first stage frozen,
#   BatchNorms (the KW attention norms included) in eval mode, and the
#   warehouse cells never frozen (`freeze_shared_state=False`): the release
#   keeps them outside the frozen stages, so they keep learning from every
#   conv that draws from them (docs/kernel_warehouse.md).
# - No `find_unused_parameters` (the release sets it; its backbones carry
#   their unused ImageNet classifier): ours have none, and every trainable
#   parameter is used (tests/test_tools/test_kw_e2e.py).
# - Drop path: the release's KW ResNet builds every block with drop path 0.1
#   (`KW_ResNet`'s default `drop_path_rate`, which its detection configs
#   leave as it is); its static ResNet and MobileNetV2 have none. The KW
#   ResNet-50 configs set `drop_path_rate=0.1`.
#
# ImageNet weights: the release's detectors start from its own ImageNet
# models; for the static ResNet-50, its `resnet50.json` model (300-epoch
# recipe, 78.44 top-1), converted to `checkpoints/resnet50_kw-recipe_in1k.pth`
# with tools/model_converters/kw_official_to_backbone.py (or trained with the
# KW recipe in projects/classification). `torchvision://resnet50` starts
# mmdet's usual baseline instead.
_base_ = './mask_rcnn_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        frozen_stages=1,
        norm_eval=True,
        freeze_shared_state=False,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/resnet50_kw-recipe_in1k.pth')))

# The release's training resolutions (short side, long side <= 1333).
multi_scales = [(480, 1333), (512, 1333), (544, 1333), (576, 1333),
                (608, 1333), (640, 1333), (672, 1333), (704, 1333),
                (736, 1333), (768, 1333), (800, 1333)]
crop_scales = [(400, 1333), (500, 1333), (600, 1333)]
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [
                dict(
                    type='RandomChoiceResize',
                    scales=multi_scales,
                    keep_ratio=True)
            ],
            [
                dict(
                    type='RandomChoiceResize',
                    scales=crop_scales,
                    keep_ratio=True),
                dict(
                    type='RandomCrop',
                    crop_type='absolute_range',
                    crop_size=(384, 600),
                    allow_negative_crop=True),
                dict(
                    type='RandomChoiceResize',
                    scales=multi_scales,
                    keep_ratio=True)
            ],
        ]),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=0.0001,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'attention.norm1': dict(decay_mult=0.0)}))
