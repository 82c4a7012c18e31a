# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Convert a released ODConv COCO detector (MMDetection 2.x) to ours.

Example::

    python tools/model_converters/odconv_mmdet2_detector.py \\
        faster_rcnn_odconv4x_r50_fpn_1x_coco.pth \\
        checkpoints/odconv4x_faster_rcnn_r50_fpn_1x_released.pth --arch r50

The result loads (``strict=True``) into the model of
``configs/odconv4x_faster_rcnn_r50_fpn_1x.py`` (or the ``mask``/``mbv2``
variants), e.g. with ``tools/test.py CONFIG DST``.
"""
import argparse
import os
import os.path as osp
import sys
import time
from typing import List, Optional

import torch

from dynconv_mmdet.converters.released_detector import (
    CLASSIFIER_KEYS, convert_released_detector, released_detector_type)
from dynconv_mmdet.utils.checkpoint import safe_torch_load


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a released ODConv MMDetection 2.x Faster/Mask '
        'R-CNN checkpoint to dynconv-mmdet (MMDetection 3.x).')
    parser.add_argument('src', help='released checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint path')
    parser.add_argument(
        '--arch',
        required=True,
        choices=sorted(CLASSIFIER_KEYS),
        help='backbone: r50 (OD-ResNet-50 4x) or mbv2 (OD-MobileNetV2 1.0 '
        '4x)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    ckpt = safe_torch_load(args.src)
    if not isinstance(ckpt, dict):
        raise ValueError(f'{args.src}: expected a dict checkpoint, got '
                         f'{type(ckpt).__name__}.')
    state_dict = ckpt.get('state_dict', ckpt)
    src_meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    converted = convert_released_detector(state_dict, args.arch)
    dropped = [
        k for k in CLASSIFIER_KEYS[args.arch]
        if k in state_dict or f'module.{k}' in state_dict
    ]
    meta = dict(
        source=osp.abspath(args.src),
        converter='dynconv_mmdet.converters.convert_released_detector',
        arch=args.arch,
        detector=released_detector_type(state_dict),
        dropped_keys=dropped,
        time=time.strftime('%Y-%m-%d %H:%M:%S'))
    classes = src_meta.get('CLASSES')
    if classes:
        # mmdet 2.x kept the class names as meta['CLASSES']; 3.x reads
        # meta['dataset_meta']['classes'].
        meta['dataset_meta'] = dict(classes=tuple(classes))
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save({'state_dict': converted, 'meta': meta}, args.dst)
    print(f'{meta["detector"]} ({args.arch}): converted {len(converted)} '
          f'tensors, dropped {dropped} -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
