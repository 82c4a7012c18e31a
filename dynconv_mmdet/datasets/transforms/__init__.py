"""Data transforms registered in mmengine's root ``TRANSFORMS`` registry
(visible from mmdet's and mmpretrain's scopes)."""
from .loading import (CheckedLoadImageFromFile, ImageDecodeError,
                      use_checked_image_loader)

__all__ = [
    'CheckedLoadImageFromFile', 'ImageDecodeError', 'use_checked_image_loader'
]
