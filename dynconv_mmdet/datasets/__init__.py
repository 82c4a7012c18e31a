# Copyright (c) dynconv-mmdet contributors. All rights reserved.
from .toy_coco import (CLASSES, PALETTE, ToyCocoDataset, area_bucket,
                       generate_toy_coco, is_toy_coco_complete, polygon_area,
                       read_toy_coco_meta)
from .validation import check_coco_annotations

__all__ = [
    'CLASSES', 'PALETTE', 'ToyCocoDataset', 'area_bucket',
    'check_coco_annotations', 'generate_toy_coco', 'is_toy_coco_complete',
    'polygon_area', 'read_toy_coco_meta'
]
