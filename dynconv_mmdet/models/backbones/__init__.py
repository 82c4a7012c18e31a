from .conversion import (convert_mmpretrain_state_dict,
                         convert_official_state_dict, to_backbone_state_dict)
from .dynamic_mobilenet_v2 import DynamicMobileNetV2
from .dynamic_resnet import DynamicResNet
from .layout import MOBILENET_V2_PRESETS, RESNET_PRESETS
from .pretrained import (CheckpointMismatchError, LoadReport, load_pretrained,
                         match_state_dict)

__all__ = [
    'DynamicResNet', 'DynamicMobileNetV2', 'RESNET_PRESETS',
    'MOBILENET_V2_PRESETS', 'convert_official_state_dict',
    'convert_mmpretrain_state_dict', 'to_backbone_state_dict',
    'CheckpointMismatchError', 'LoadReport', 'load_pretrained',
    'match_state_dict'
]
