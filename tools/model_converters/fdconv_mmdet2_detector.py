# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Convert a released FDConv COCO detector (MMDetection 2.x) to ours.

The release (github Linwei-Chen/FDConv, ``FDConv_detection/``, mmdet
2.28.1) publishes Faster R-CNN and Mask R-CNN with its FDConv ResNet-50
(``kernel_num=64``). Example::

    python tools/model_converters/fdconv_mmdet2_detector.py \\
        mask_rcnn_r50_fpn_1x_coco_adamw_FDConv.pth \\
        checkpoints/fdconv_mask_rcnn_r50_fpn_release-recipe_adamw_1x_released.pth

The result loads (``strict=True``) into the model of
``configs/fdconv_faster_rcnn_r50_fpn_1x.py`` (Faster R-CNN, the release's
recipe) or ``configs/fdconv_mask_rcnn_r50_fpn_release-recipe_adamw_1x.py``
(Mask R-CNN, the release's recipe; ``fdconv_mask_rcnn_r50_fpn_1x.py``
builds the same model), e.g. with ``tools/test.py CONFIG DST``. The
detector is told from the keys (a mask head or not). The conversion is
:func:`dynconv_mmdet.checkpoint.convert_released_detector_file` with
``release='fdconv'``.
"""
import argparse
import sys
from typing import List, Optional

from dynconv_mmdet.checkpoint import (RELEASED_DETECTORS, CheckpointError,
                                      convert_released_detector_file)

RELEASE = 'fdconv'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    layouts = {
        arch: layout
        for (release, arch), layout in RELEASED_DETECTORS.items()
        if release == RELEASE
    }
    parser = argparse.ArgumentParser(
        description='Convert a released FDConv MMDetection 2.x Faster/Mask '
        'R-CNN checkpoint to dynconv-mmdet (MMDetection 3.x).')
    parser.add_argument('src', help='released checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint path')
    parser.add_argument(
        '--arch',
        default='r50',
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
          f'{len(out["state_dict"])} tensors -> {args.dst} (loads into '
          f'{configs})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
