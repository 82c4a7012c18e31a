# Copyright (c) dynconv-mmdet contributors. All rights reserved.
from typing import Any

from .toy_coco import ToyCocoDataset, moved_name
from .transforms import CheckedLoadImageFromFile, ImageDecodeError
from .validation import check_coco_annotations

__all__ = [
    'CheckedLoadImageFromFile', 'ImageDecodeError', 'ToyCocoDataset',
    'check_coco_annotations'
]


def __getattr__(name: str) -> Any:
    """The toy COCO generator's names moved to
    ``tools/misc/generate_toy_coco.py``: forwarded with a warning."""
    return moved_name(__name__, name)
