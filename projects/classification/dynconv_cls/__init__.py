"""ImageNet classification project of dynconv-mmdet (mmpretrain 1.x).

Importing this package registers the classification heads in mmpretrain's
``MODELS`` registry.
"""
from .models import CondConvClsHead, DropoutLinearClsHead

__all__ = ['CondConvClsHead', 'DropoutLinearClsHead']
