from .base import DynamicAttention, DynamicConv2d, TemperatureMixin
from .condconv import CondConv2d
from .conv_types import (check_conv_type, is_known_conv_type,
                         registered_conv_types)
from .dyconv import DyConv2d, DyConvAttention
from .functional import aggregate_kernels, batch_folded_conv2d, dynamic_conv2d
from .odconv import ODConv2d, ODConvAttention
from .temperature import get_temperatures, set_temperature

__all__ = [
    'DynamicAttention', 'DynamicConv2d', 'TemperatureMixin', 'CondConv2d',
    'DyConv2d', 'DyConvAttention', 'ODConv2d', 'ODConvAttention',
    'aggregate_kernels', 'batch_folded_conv2d', 'dynamic_conv2d',
    'get_temperatures', 'set_temperature', 'check_conv_type',
    'is_known_conv_type', 'registered_conv_types'
]
