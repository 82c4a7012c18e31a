"""Dynamic convolution (DyConv).

Chen et al. "Dynamic Convolution: Attention over Convolution Kernels",
CVPR 2020 (arXiv 1912.03458).
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from .attention import global_average
from .base import DynamicAttention, DynamicConv2d
from .checks import IntOrPair, check_positive_int
from .temperature import TemperatureMixin


class DyConvAttention(nn.Module):
    """Kernel attention ``softmax(FC2(ReLU(FC1(GAP(x)))) / T)``.

    ``fc1``: ``C_in -> max(int(C_in * reduction), 1)``, ``fc2``: ``-> K``,
    both with bias. Input ``[B, C_in, H, W]`` -> ``[B, K]``.
    """

    def __init__(self, in_channels: int, kernel_num: int,
                 reduction: float) -> None:
        super().__init__()
        hidden = max(int(in_channels * reduction), 1)
        self.fc1 = nn.Linear(in_channels, hidden)
        self.fc2 = nn.Linear(hidden, kernel_num)

    def forward(self, x: Tensor, temperature: float) -> Tensor:
        return self.from_pooled(global_average(x), temperature)

    def from_pooled(self, pooled: Tensor, temperature: float) -> Tensor:
        """Kernel attention ``[B, K]`` from the pooled input ``[B, C_in]``."""
        logits = self.fc2(F.relu(self.fc1(pooled)))
        if temperature != 1:
            logits = logits / temperature
        return torch.softmax(logits, dim=1)

    def forward_inference(self, x: Tensor, temperature: float) -> Tensor:
        """:meth:`forward` without autograd: the same numbers with the ReLU
        and the temperature applied in place."""
        fc1, fc2 = self.fc1, self.fc2
        hidden = F.linear(x.mean((2, 3)), fc1.weight, fc1.bias).relu_()
        logits = F.linear(hidden, fc2.weight, fc2.bias)
        if temperature != 1:
            logits.div_(temperature)
        return torch.softmax(logits, dim=1)


@MODELS.register_module()
class DyConv2d(TemperatureMixin, DynamicConv2d):
    """DyConv: ``kernel = sum_k pi_k(x) W_k``, ``pi = softmax(z / T)``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
            groups, bias: As :class:`DynamicConv2d`.
        kernel_num (int): Number of kernels ``K`` (the layer's
            ``num_kernels``). Default: 4.
        reduction (float): Hidden width ratio of the attention. Default: 0.25.
        temperature (float): Softmax temperature ``T``. Default: 1.

    Shapes: input ``[B, C_in, H, W]``, weight
    ``[K, C_out, C_in / groups, kh, kw]``, output ``[B, C_out, H', W']``.
    """

    temperature_default = 1.0
    temperature_schedule = dict(start=30.0, end=1.0, epochs=10)
    temperature_doc = 'divides the kernel-attention logits; T > 0'
    num_kernels_arg = 'kernel_num'
    example_kwargs = dict(kernel_num=3)

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrPair,
                 stride: IntOrPair = 1,
                 padding: IntOrPair = 0,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 bias: bool = False,
                 kernel_num: int = 4,
                 reduction: float = 0.25,
                 temperature: Optional[float] = 1.0) -> None:
        check_positive_int('DyConv2d', 'kernel_num', kernel_num)
        if not 0 < reduction <= 1:
            raise ValueError('DyConv2d: reduction must be in (0, 1], got '
                             f'{reduction}')
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, kernel_num)
        self.temperature = temperature
        self.attention = DyConvAttention(in_channels, kernel_num, reduction)
        self.init_weights()

    def init_weights(self) -> None:
        """Kaiming-normal kernels; default ``nn.Linear`` attention init."""
        super().init_weights()
        self.attention.fc1.reset_parameters()
        self.attention.fc2.reset_parameters()

    def attention_from_pooled(self, pooled: Tensor) -> DynamicAttention:
        """Kernel attention ``[B, K]`` from the pooled input."""
        return DynamicAttention(
            kernel=self.attention.from_pooled(pooled, self.temperature))

    def inference_attention(self, x: Tensor) -> DynamicAttention:
        """Kernel attention without autograd (ReLU and temperature in
        place)."""
        return DynamicAttention(
            kernel=self.attention.forward_inference(x, self.temperature))
