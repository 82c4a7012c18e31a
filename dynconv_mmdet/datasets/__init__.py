# Copyright (c) dynconv-mmdet contributors. All rights reserved.
from .transforms import CheckedLoadImageFromFile, ImageDecodeError
from .validation import check_coco_annotations

__all__ = [
    'CheckedLoadImageFromFile', 'ImageDecodeError', 'check_coco_annotations'
]
