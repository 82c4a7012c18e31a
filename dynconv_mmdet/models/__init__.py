from .backbones import (DynamicCSPDarknet, DynamicCSPNeXt, DynamicMobileNetV2,
                        DynamicResNet)
from .layers import CondConv2d, DyConv2d, ODConv2d

__all__ = [
    'CondConv2d', 'DyConv2d', 'ODConv2d', 'DynamicResNet',
    'DynamicMobileNetV2', 'DynamicCSPNeXt', 'DynamicCSPDarknet'
]
