# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Deprecated: detector conversion lives in :mod:`dynconv_mmdet.checkpoint`
(:mod:`dynconv_mmdet.checkpoint.released_detector`)."""
from ..checkpoint.moved import moved_names

__getattr__ = moved_names(
    __name__, ('BACKBONE_ARCHS', 'CLASSIFIER_KEYS',
               'convert_released_detector', 'released_detector_type'))
