from .dynamic_csp_darknet import DynamicCSPDarknet
from .dynamic_cspnext import DynamicCSPNeXt
from .dynamic_mobilenet_v2 import DynamicMobileNetV2
from .dynamic_resnet import DynamicResNet
from .layout import (CSP_DARKNET_PRESETS, CSPNEXT_PRESETS,
                     MOBILENET_V2_PRESETS, RESNET_PRESETS)

__all__ = [
    'DynamicResNet', 'DynamicMobileNetV2', 'DynamicCSPNeXt',
    'DynamicCSPDarknet', 'RESNET_PRESETS', 'MOBILENET_V2_PRESETS',
    'CSPNEXT_PRESETS', 'CSP_DARKNET_PRESETS'
]
