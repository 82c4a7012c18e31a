from ...checkpoint.moved import moved_names
from .dynamic_csp_darknet import DynamicCSPDarknet
from .dynamic_cspnext import DynamicCSPNeXt
from .dynamic_mobilenet_v2 import DynamicMobileNetV2
from .dynamic_resnet import DynamicResNet
from .layout import (CSP_DARKNET_PRESETS, CSPNEXT_PRESETS,
                     MOBILENET_V2_PRESETS, RESNET_PRESETS)

# Checkpoint conversion and loading moved to dynconv_mmdet.checkpoint.
__getattr__ = moved_names(
    __name__, ('convert_official_state_dict', 'convert_mmpretrain_state_dict',
               'to_backbone_state_dict', 'CheckpointMismatchError',
               'LoadReport', 'load_pretrained', 'match_state_dict'))

__all__ = [
    'DynamicResNet', 'DynamicMobileNetV2', 'DynamicCSPNeXt',
    'DynamicCSPDarknet', 'RESNET_PRESETS', 'MOBILENET_V2_PRESETS',
    'CSPNEXT_PRESETS', 'CSP_DARKNET_PRESETS'
]
