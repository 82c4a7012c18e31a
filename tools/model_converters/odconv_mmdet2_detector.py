# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Convert a released ODConv COCO detector (MMDetection 2.x) to ours.

Example::

    python tools/model_converters/odconv_mmdet2_detector.py \\
        faster_rcnn_odconv4x_r50_fpn_1x_coco.pth \\
        checkpoints/odconv4x_faster_rcnn_r50_fpn_1x_released.pth --arch r50

The result loads (``strict=True``) into the model of
``configs/odconv4x_faster_rcnn_r50_fpn_1x.py`` (or the ``mask``/``mbv2``
variants), e.g. with ``tools/test.py CONFIG DST``. The conversion is
:func:`dynconv_mmdet.checkpoint.convert_released_detector_file`.
"""
import argparse
import sys
from typing import List, Optional

from dynconv_mmdet.checkpoint import (CLASSIFIER_KEYS, CheckpointError,
                                      convert_released_detector_file)


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
    try:
        out = convert_released_detector_file(args.src, args.dst, args.arch)
    except (CheckpointError, KeyError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) else err
        raise SystemExit(f'error: {message}')
    meta = out['meta']
    print(f'{meta["detector"]} ({args.arch}): converted '
          f'{len(out["state_dict"])} tensors, dropped '
          f'{meta["dropped_keys"]} -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
