# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Configs of a few-iteration toy detection run, for end-to-end tests.

:func:`write_toy_config` writes a config that inherits the toy config
(``configs/toy/odconv_faster_rcnn_r50_fpn_toy.py``, or any detector config
of the same data layout) and points it at a generated toy COCO set with
128 px images, single-process data loading, no periodic evaluation and,
with ``tiny=True``, a ResNet-18 with thin FPN and heads: the same code
paths in seconds.
"""
from typing import Optional

# Overrides of the toy config for runs of a few iterations: small images,
# single-process data loading, no periodic evaluation.
SMALL_RUN = """
_base_ = {base!r}
data_root = {data_root!r}
image_scale = (128, 128)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
test_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
train_cfg = dict(max_iters={iters})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=2),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end={iters},
         milestones=[3], gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval={ckpt_interval}),
    visualization=dict(draw=False))
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
"""

# A ResNet-18 with thin FPN / heads: same code paths, cheaper.
TINY_MODEL = """
model = dict(
    backbone=dict(depth=18{preset}),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=100),
        rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100)))
"""


def write_toy_config(path: str,
                     base: str,
                     data_root: str,
                     iters: int = 2,
                     ckpt_interval: int = 2,
                     tiny: bool = True,
                     preset: Optional[str] = None) -> str:
    """Write a few-iteration config of ``base`` on a toy COCO set.

    Args:
        path (str): The config file to write.
        base (str): Path of the config it inherits (the toy config).
        data_root (str): The toy COCO set (``annotations/``, ``train/``,
            ``val/``).
        iters (int): Training iterations.
        ckpt_interval (int): Checkpoint interval (iterations).
        tiny (bool): ResNet-18 with thin FPN and heads.
        preset (str, optional): Another preset of the backbone.

    Returns:
        str: ``path``.
    """
    text = SMALL_RUN.format(
        base=base,
        data_root=data_root.rstrip('/') + '/',
        iters=iters,
        ckpt_interval=ckpt_interval)
    if tiny:
        text += TINY_MODEL.format(
            preset='' if preset is None else f', preset={preset!r}')
    elif preset is not None:
        text += f'model = dict(backbone=dict(preset={preset!r}))\n'
    with open(path, 'w') as f:
        f.write(text)
    return path
