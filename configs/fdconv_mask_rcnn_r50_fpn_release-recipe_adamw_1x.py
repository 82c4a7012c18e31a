# Mask R-CNN, ResNet-50 with FDConv (kernel_num 64) + FPN, 12 epochs, with
# the FDConv release's own COCO recipe: the recipe of its published Mask
# R-CNN (Linwei-Chen/FDConv, FDConv_detection/configs/mask_rcnn/
# mask_rcnn_r50_fpn_1x_coco_adamw_FDConv.py, mmdet 2.28.1), written for
# mmdet 3.x, for comparisons with its numbers. Not the 1x of the model zoo
# (`fdconv_mask_rcnn_r50_fpn_1x.py`, SGD, the recipe of every variant), nor
# the KernelWarehouse release's recipe (the other `*_adamw_1x.py` configs:
# other LR steps, no padding to 64, fp32).
#
# What differs from `fdconv_mask_rcnn_r50_fpn_1x.py` (same model, same
# ImageNet start, everything else unchanged):
# - AdamW, lr 1e-4, betas (0.9, 0.999), weight decay 0.05; no gradient
#   clipping. The release trains 4 images per GPU without saying on how
#   many GPUs; 16 images (8 GPUs x 2) is our assumption, mmdet's batch for
#   this lr (`--auto-scale-lr` scales it). The attention BatchNorms run in
#   eval mode (`norm_eval`), so the images per GPU change no statistics.
# - Weight decay exemptions as the release's `custom_keys` act. It lists
#   'absolute_pos_embed', 'relative_position_bias_table' (Swin leftovers)
#   and 'norm' with `decay_mult=0`, inside its `optimizer` dict, where
#   mmcv 1.x's build_optimizer reads `paramwise_cfg`; mmcv 1.x (as
#   mmengine) matches a key as a substring of the full parameter name. Its
#   ResNet names its BatchNorms `bn1`-`bn3` and `downsample.1`, the FPN and
#   heads have none, and an FDConv's attention BatchNorm is
#   `KSM_Global.bn`: 'norm' matches exactly the LayerNorm of FDConv's local
#   attention, `KSM_Local.norm` (weight and bias, 48 convs: 96 tensors,
#   the frozen first stage's included, which train). Our FDConv2d keeps
#   these names and nothing else of our model contains 'norm' (checked by
#   tests/test_configs/test_configs.py); the key below names what it
#   matches.
# - The release's LR steps: mmdet 2.x's schedule_1x (500-iteration linear
#   warm-up from 0.001, 12 epochs) with x0.1 at epochs 10 and 11.
# - Multi-scale training with random crops (DETR / Sparse R-CNN), mmdet
#   3.x's form of the release's AutoAugment: flip, then either a resize to
#   a short side of 480-800 (step 32, long side <= 1333), or a resize to
#   400 / 500 / 600, a random crop of 384-600 px and that same resize.
# - Images padded to a multiple of 64 (the release's `Pad size_divisor=64`
#   after `Normalize`: zeros in normalised space, as our data preprocessor
#   pads). The preprocessor pads evaluation images to 64 too, where the
#   release's test pipeline pads to 32; FDConv's FBM and global attention
#   see the whole padded map, so for the release's evaluation exactly, test
#   with `--cfg-options model.data_preprocessor.pad_size_divisor=32`.
# - Mixed precision with a dynamic loss scale (the release's `fp16 =
#   dict(loss_scale='dynamic')`: autocast of the detector's forward);
#   AmpOptimWrapper's loss scale is dynamic by default. FDConv's FFTs run in
#   float32 under autocast. It needs a CUDA device: on a CPU, train with
#   `--cfg-options optim_wrapper.type=OptimWrapper` (fp32).
# - The backbone is the SGD config's, as the release builds it for both
#   detectors: frozen stem and first stage with the attention and FBM
#   trainable, BatchNorms in eval mode, `torchvision://resnet50` densely
#   started (the release: its converted ResNet-50), no drop path.
_base_ = './fdconv_mask_rcnn_r50_fpn_1x.py'

model = dict(data_preprocessor=dict(pad_size_divisor=64))

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
    type='AmpOptimWrapper',
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=0.0001,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'KSM_Local.norm': dict(decay_mult=0.0)}))

param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[10, 11],
        gamma=0.1)
]
