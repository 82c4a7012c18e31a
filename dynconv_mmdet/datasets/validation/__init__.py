# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Early, readable checks of COCO-format data sets.

mmdet/pycocotools fail deep inside data loading (``KeyError: 'bbox'``,
``FileNotFoundError`` for one image in the middle of an epoch, a corrupt
image two iterations in, ``need at least one array to concatenate`` when the
class names do not match or a split is empty, ...), or not at all (boxes of
categories the config does not list are dropped; an EXIF-rotated photo no
longer fits its boxes; a JPEG with a damaged body decodes with wrong
pixels). Calling :func:`check_coco_annotations` before training turns these
into one error that names the file, the problem and what to fix.

:mod:`.annotations` checks the annotation file (fields, ids, boxes, the
config's classes, empty splits); :mod:`.images` checks the image files it
lists (existence, decoding, size), as deeply as :func:`image_check_mode`
says.
"""
from .annotations import (DATA_CHECK_KEY, IGNORE_UNLISTED_CATEGORIES,
                          check_coco_annotations)
from .images import (IMAGE_CHECK_ENV, IMAGE_CHECK_MODES, ImageReport,
                     check_image_files, image_check_mode, image_problem,
                     inspect_images, pipeline_applies_exif_orientation)

__all__ = [
    'DATA_CHECK_KEY', 'IGNORE_UNLISTED_CATEGORIES', 'IMAGE_CHECK_ENV',
    'IMAGE_CHECK_MODES', 'ImageReport', 'check_coco_annotations',
    'check_image_files', 'image_check_mode', 'image_problem', 'inspect_images',
    'pipeline_applies_exif_orientation'
]
