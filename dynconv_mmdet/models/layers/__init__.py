from .base import (DynamicAttention, DynamicConv2d, TemperatureMixin,
                   check_temperature, clear_inference_caches,
                   finalize_dynamic_convs, freeze_dynamic_convs)
from .condconv import CondConv2d
from .conv_types import (check_conv_type, is_known_conv_type,
                         registered_conv_types)
from .dyconv import DyConv2d, DyConvAttention
from .functional import aggregate_kernels, batch_folded_conv2d, dynamic_conv2d
from .kernel_warehouse import KernelWarehouseManager, KWConv2d, KWLinear
from .odconv import ODConv2d, ODConvAttention
from .temperature import get_temperatures, set_temperature

__all__ = [
    'DynamicAttention', 'DynamicConv2d', 'TemperatureMixin',
    'check_temperature', 'clear_inference_caches', 'finalize_dynamic_convs',
    'freeze_dynamic_convs', 'CondConv2d', 'DyConv2d', 'DyConvAttention',
    'ODConv2d', 'ODConvAttention', 'aggregate_kernels', 'batch_folded_conv2d',
    'dynamic_conv2d', 'get_temperatures', 'set_temperature', 'check_conv_type',
    'is_known_conv_type', 'registered_conv_types', 'KWConv2d', 'KWLinear',
    'KernelWarehouseManager'
]
