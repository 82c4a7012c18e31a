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
``release='fdconv'``, behind the shared command line
(:mod:`dynconv_mmdet.checkpoint.released_detector_cli`).
"""
import sys
from typing import List, Optional

from dynconv_mmdet.checkpoint.released_detector_cli import \
    released_detector_main


def main(argv: Optional[List[str]] = None) -> int:
    return released_detector_main(
        'fdconv', 'Convert a released FDConv MMDetection 2.x Faster/Mask '
        'R-CNN checkpoint to dynconv-mmdet (MMDetection 3.x).',
        argv,
        default_arch='r50')


if __name__ == '__main__':
    sys.exit(main())
