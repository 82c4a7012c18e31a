"""Data transforms registered in mmengine's root ``TRANSFORMS`` registry
(visible from mmdet's and mmpretrain's scopes)."""
from .loading import CheckedLoadImageFromFile, ImageDecodeError

__all__ = ['CheckedLoadImageFromFile', 'ImageDecodeError']
