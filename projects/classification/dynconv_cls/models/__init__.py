"""Classification heads."""
from .heads import CondConvClsHead, DropoutLinearClsHead

__all__ = ['CondConvClsHead', 'DropoutLinearClsHead']
