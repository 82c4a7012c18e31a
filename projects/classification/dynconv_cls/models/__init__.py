"""Classification heads."""
from .heads import CondConvClsHead, DropoutLinearClsHead
from .kw_head import KWLinearClsHead

__all__ = ['CondConvClsHead', 'DropoutLinearClsHead', 'KWLinearClsHead']
