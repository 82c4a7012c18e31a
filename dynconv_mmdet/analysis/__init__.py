"""Analysis helpers: parameter and FLOP counts of dynamic backbones."""
from .complexity import (FlopCounter, attention_flops, backbone_complexity,
                         conv2d_flops, count_parameters, dynamic_conv2d_flops,
                         format_complexity_table, model_flops)

__all__ = [
    'FlopCounter', 'attention_flops', 'backbone_complexity', 'conv2d_flops',
    'count_parameters', 'dynamic_conv2d_flops', 'format_complexity_table',
    'model_flops'
]
