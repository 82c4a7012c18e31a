# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Convert a released ODConv COCO detector (MMDetection 2.x) to ours.

Example::

    python tools/model_converters/odconv_mmdet2_detector.py \\
        faster_rcnn_odconv4x_r50_fpn_1x_coco.pth \\
        checkpoints/odconv4x_faster_rcnn_r50_fpn_1x_released.pth --arch r50

The result loads (``strict=True``) into the model of
``configs/odconv4x_faster_rcnn_r50_fpn_1x.py`` (or the ``mask``/``mbv2``
variants), e.g. with ``tools/test.py CONFIG DST``. The conversion is
:func:`dynconv_mmdet.checkpoint.convert_released_detector_file`, behind the
shared command line (:mod:`dynconv_mmdet.checkpoint.released_detector_cli`).
"""
import sys
from typing import List, Optional

from dynconv_mmdet.checkpoint.released_detector_cli import \
    released_detector_main


def main(argv: Optional[List[str]] = None) -> int:
    return released_detector_main(
        'odconv', 'Convert a released ODConv MMDetection 2.x Faster/Mask '
        'R-CNN checkpoint to dynconv-mmdet (MMDetection 3.x).', argv)


if __name__ == '__main__':
    sys.exit(main())
