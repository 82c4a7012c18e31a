"""Dynamic convolution layers: drop-in replacements for ``nn.Conv2d``.

Five families, each registered in mmengine's root ``MODELS`` (so that
``build_conv_layer`` / any ``conv_cfg`` finds them from every scope):

* :class:`CondConv2d` (CondConv, Yang et al., NeurIPS 2019): experts mixed
  by independent sigmoid routing weights;
* :class:`DyConv2d` (DyConv, Chen et al., CVPR 2020): kernels mixed by a
  softmax attention with a temperature;
* :class:`ODConv2d` (ODConv, Li et al., ICLR 2022): kernel, spatial, input-
  and output-channel attentions; numerically the release;
* :class:`KWConv2d` / :class:`KWLinear` (KernelWarehouse, Li and Yao, ICML
  2024): kernels assembled from cells of a warehouse shared by the convs of
  a stage; numerically the release;
* :class:`FDConv2d` (FDConv, Chen et al., CVPR 2025): a kernel stored as
  its Fourier spectrum, disjoint frequency groups scaled by a kernel
  attention, kernel spatial modulation and frequency band modulation of the
  input; numerically the release (package ``fdconv``).

Every family derives from the protocol :class:`DynamicConv2d` (``base``)
and exposes its kernel count as ``num_kernels``. Beside it: the attentions
and their helpers (``attention``), the temperature (``temperature``), the
maths (``functional``), the inference cache (``inference_cache``) and the
completion of convs that share state (``groups``).
"""
from .attention import DynamicAttention
from .base import DynamicConv2d
from .condconv import CondConv2d
from .conv_types import (check_conv_type, is_known_conv_type,
                         registered_conv_types)
from .dyconv import DyConv2d, DyConvAttention
from .fdconv import FDConv2d
from .functional import aggregate_kernels, dynamic_conv2d
from .groups import finalize_dynamic_convs, freeze_dynamic_convs
from .inference_cache import clear_inference_caches
from .kernel_warehouse import KernelWarehouseManager, KWConv2d, KWLinear
from .odconv import ODConv2d
from .odconv_attention import ODConvAttention
from .temperature import (TemperatureMixin, check_temperature,
                          get_temperatures, set_temperature)

__all__ = [
    'DynamicAttention', 'DynamicConv2d', 'TemperatureMixin',
    'check_temperature', 'clear_inference_caches', 'finalize_dynamic_convs',
    'freeze_dynamic_convs', 'CondConv2d', 'DyConv2d', 'DyConvAttention',
    'ODConv2d', 'ODConvAttention', 'aggregate_kernels', 'dynamic_conv2d',
    'get_temperatures', 'set_temperature', 'check_conv_type',
    'is_known_conv_type', 'registered_conv_types', 'KWConv2d', 'KWLinear',
    'KernelWarehouseManager', 'FDConv2d'
]
