# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Convert a released KernelWarehouse COCO detector (MMDetection 2.x) to
ours.

The release (github OSVAI/KernelWarehouse, ``detection/``) publishes Mask
R-CNN with KW-ResNet-50 and KW-MobileNetV2 1.0, 1x and 4x. Example::

    python tools/model_converters/kw_mmdet2_detector.py \\
        mask_rcnn_kw4x_resnet50_adamw_1x_coco.pth \\
        checkpoints/kw4x_mask_rcnn_r50_fpn_adamw_1x_released.pth --arch r50

The result loads (``strict=True``) into the model of
``configs/kw4x_mask_rcnn_r50_fpn_adamw_1x.py`` (the release's recipe; the
SGD config ``kw4x_mask_rcnn_r50_fpn_1x.py`` builds the same model; ``kw1x_``
for the 1x detectors, ``_mbv2_`` for MobileNetV2), e.g. with ``tools/test.py
CONFIG DST``. The conversion is
:func:`dynconv_mmdet.checkpoint.convert_released_detector_file` with
``release='kw'``.
"""
import argparse
import sys
from typing import List, Optional

from dynconv_mmdet.checkpoint import (RELEASED_DETECTORS, CheckpointError,
                                      convert_released_detector_file)

RELEASE = 'kw'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    layouts = {
        arch: layout
        for (release, arch), layout in RELEASED_DETECTORS.items()
        if release == RELEASE
    }
    parser = argparse.ArgumentParser(
        description='Convert a released KernelWarehouse MMDetection 2.x '
        'Mask R-CNN checkpoint to dynconv-mmdet (MMDetection 3.x).')
    parser.add_argument('src', help='released checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint path')
    parser.add_argument(
        '--arch',
        required=True,
        choices=sorted(layouts),
        help='backbone: ' + ', '.join(f'{arch} ({layout.backbone})'
                                      for arch, layout in layouts.items()))
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        out = convert_released_detector_file(
            args.src, args.dst, args.arch, release=RELEASE)
    except (CheckpointError, KeyError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) else err
        raise SystemExit(f'error: {message}')
    meta = out['meta']
    configs = RELEASED_DETECTORS[RELEASE, args.arch].configs
    print(f'{meta["detector"]} ({args.arch}): converted '
          f'{len(out["state_dict"])} tensors, dropped '
          f'{meta["dropped_keys"]} -> {args.dst} (loads into {configs})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
