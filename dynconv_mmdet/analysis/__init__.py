"""Analysis helpers: parameter and FLOP counts of dynamic backbones, the
released formulations the benchmark compares with
(:mod:`.reference`); the benchmark itself: :mod:`.benchmark`."""
from .complexity import (FlopCounter, attention_flops, backbone_complexity,
                         conv2d_flops, count_parameters, dynamic_conv2d_flops,
                         format_complexity_table, model_flops, padded_shape)
from .reference import (batch_folded_conv2d, has_reference, register_reference,
                        released_formulation)

__all__ = [
    'FlopCounter', 'attention_flops', 'backbone_complexity', 'conv2d_flops',
    'count_parameters', 'dynamic_conv2d_flops', 'format_complexity_table',
    'model_flops', 'padded_shape', 'batch_folded_conv2d', 'has_reference',
    'register_reference', 'released_formulation'
]
