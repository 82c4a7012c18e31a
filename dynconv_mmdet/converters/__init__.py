# Copyright (c) dynconv-mmdet contributors. All rights reserved.
from .released_detector import (BACKBONE_ARCHS, CLASSIFIER_KEYS,
                                convert_released_detector,
                                released_detector_type)

__all__ = [
    'BACKBONE_ARCHS', 'CLASSIFIER_KEYS', 'convert_released_detector',
    'released_detector_type'
]
