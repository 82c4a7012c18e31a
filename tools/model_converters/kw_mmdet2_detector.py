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
``release='kw'``, behind the shared command line
(:mod:`dynconv_mmdet.checkpoint.released_detector_cli`).
"""
import sys
from typing import List, Optional

from dynconv_mmdet.checkpoint.released_detector_cli import \
    released_detector_main


def main(argv: Optional[List[str]] = None) -> int:
    return released_detector_main(
        'kw', 'Convert a released KernelWarehouse MMDetection 2.x '
        'Mask R-CNN checkpoint to dynconv-mmdet (MMDetection 3.x).', argv)


if __name__ == '__main__':
    sys.exit(main())
