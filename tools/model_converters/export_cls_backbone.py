# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Keep only the backbone of a classification checkpoint, for detection.

A checkpoint saved by the classification project (mmpretrain layout, keys
``backbone.*``, ``neck.*``, ``head.*``) is reduced to the backbone weights
with the ``backbone.`` prefix stripped, i.e. exactly the ``state_dict`` of
``DynamicResNet`` / ``DynamicMobileNetV2``
(:func:`dynconv_mmdet.checkpoint.export_backbone`). Detection configs then
use it through ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
Example::

    python tools/model_converters/export_cls_backbone.py \
        work_dirs/odconv1x_resnet50_8xb32_in1k/epoch_100.pth \
        checkpoints/odconv1x_resnet50_in1k.pth

The temperature of DyConv / ODConv layers is not a weight, so nothing about
it is exported; detection runs at temperature 1 (ODConv, ICLR 2022).
"""
import argparse
from typing import List, Optional

import torch

from dynconv_mmdet.checkpoint import (CheckpointError, export_backbone,
                                      extract_backbone)

__all__ = ['extract_backbone', 'export_backbone', 'main']


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Keep only the backbone of a classification checkpoint')
    parser.add_argument('src', help='classification checkpoint (.pth)')
    parser.add_argument('dst', help='output backbone checkpoint (.pth)')
    parser.add_argument(
        '--prefix',
        default='backbone.',
        help='prefix of the backbone keys (stripped)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    try:
        out = export_backbone(args.src, args.dst, args.prefix)
    except (CheckpointError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) else err
        raise SystemExit(f'error: {message}')
    num_params = sum(
        v.numel() for k, v in out['state_dict'].items()
        if torch.is_tensor(v) and not k.endswith('num_batches_tracked'))
    print(f'Saved {len(out["state_dict"])} backbone tensors '
          f'({num_params / 1e6:.6f}M values) to {args.dst}')


if __name__ == '__main__':
    main()
