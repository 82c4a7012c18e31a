"""ImageNet classification project of dynconv-mmdet (mmpretrain 1.x).

Importing this package registers the classification heads in mmpretrain's
``MODELS`` registry.
"""
from typing import Any

from .models import CondConvClsHead, DropoutLinearClsHead

__all__ = ['CondConvClsHead', 'DropoutLinearClsHead']


def __getattr__(name: str) -> Any:
    """``generate_toy_imagenet`` moved to
    ``projects/classification/tools/create_toy_imagenet.py``: forwarded
    with a ``DeprecationWarning``."""
    from .datasets.toy_imagenet import moved_name
    return moved_name(__name__, name)
