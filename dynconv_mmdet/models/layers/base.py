"""Common base of the dynamic convolution layers."""
from typing import NamedTuple, Optional, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor
from torch.nn.modules.utils import _pair

from .functional import dynamic_conv2d

IntOrPair = Union[int, Tuple[int, int]]


class DynamicAttention(NamedTuple):
    """Attentions of one forward pass; ``None`` stands for the constant 1.

    Shapes: ``kernel`` ``[B, K]``, ``spatial`` ``[B, kh * kw]``,
    ``in_channel`` ``[B, C_in]``, ``out_channel`` ``[B, C_out]``.
    """
    kernel: Optional[Tensor] = None
    spatial: Optional[Tensor] = None
    in_channel: Optional[Tensor] = None
    out_channel: Optional[Tensor] = None


def _check_positive_int(layer: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{layer}: {name} must be a positive integer, '
                         f'got {value!r}')


def _check_pair(layer: str, name: str, value: Tuple[int, int],
                minimum: int) -> None:
    if any(
            isinstance(v, bool) or not isinstance(v, int) or v < minimum
            for v in value):
        raise ValueError(f'{layer}: {name} must be integers >= {minimum}, '
                         f'got {value!r}')


class DynamicConv2d(nn.Module):
    """Base class: a drop-in convolution whose kernel depends on its input.

    Subclasses implement :meth:`compute_attention`. The layer keeps the
    attributes that mmcv's ``ConvModule`` reads (``in_channels``,
    ``out_channels``, ``kernel_size``, ``stride``, ``padding``, ``dilation``,
    ``groups``, ``transposed``, ``output_padding``) and is deliberately not an
    ``nn.Conv2d`` subclass, so tools that fold BatchNorm into ``nn.Conv2d``
    leave it alone.

    Args:
        in_channels (int): ``C_in``.
        out_channels (int): ``C_out``.
        kernel_size (int | tuple[int, int]): Kernel size.
        stride, padding, dilation (int | tuple[int, int]): As ``nn.Conv2d``.
        groups (int): Convolution groups.
        bias (bool): Add one static per-output-channel bias after the
            dynamic part.
        num_kernels (int): Number of kernels ``K``; the weight has shape
            ``[K, C_out, C_in / groups, kh, kw]``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrPair,
                 stride: IntOrPair = 1,
                 padding: IntOrPair = 0,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 bias: bool = False,
                 num_kernels: int = 1) -> None:
        super().__init__()
        name = type(self).__name__
        _check_positive_int(name, 'in_channels', in_channels)
        _check_positive_int(name, 'out_channels', out_channels)
        _check_positive_int(name, 'groups', groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f'{name}: in_channels ({in_channels}) and out_channels '
                f'({out_channels}) must both be divisible by groups '
                f'({groups})')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        _check_pair(name, 'kernel_size', self.kernel_size, 1)
        _check_pair(name, 'stride', self.stride, 1)
        _check_pair(name, 'padding', self.padding, 0)
        _check_pair(name, 'dilation', self.dilation, 1)
        self.groups = groups
        self.transposed = False
        self.output_padding = (0, 0)
        self.weight = nn.Parameter(
            torch.empty(num_kernels, out_channels, in_channels // groups,
                        *self.kernel_size))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter('bias', None)

    @property
    def num_kernels(self) -> int:
        """Number of kernels (experts) ``K``."""
        return self.weight.size(0)

    @property
    def is_depthwise(self) -> bool:
        """Whether every channel is convolved on its own."""
        return self.groups == self.in_channels == self.out_channels

    def init_weights(self) -> None:
        """Kaiming-normal (fan_out, ReLU) init of every kernel, zero bias."""
        for kernel in self.weight.data:
            nn.init.kaiming_normal_(
                kernel, mode='fan_out', nonlinearity='relu')
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def compute_attention(self, x: Tensor) -> DynamicAttention:
        """Attentions for input ``x`` of shape ``[B, C_in, H, W]``."""
        raise NotImplementedError

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error for an input this layer cannot take."""
        if not isinstance(x, Tensor):
            raise TypeError(f'{type(self).__name__} expects a Tensor, got '
                            f'{type(x).__name__}')
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects an input of shape '
                f'[N, {self.in_channels}, H, W], got {list(x.shape)}')

    def forward(self, x: Tensor) -> Tensor:
        """Input ``[B, C_in, H, W]`` -> output ``[B, C_out, H_out, W_out]``."""
        self.check_input(x)
        attn = self.compute_attention(x)
        return dynamic_conv2d(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            kernel_attn=attn.kernel,
            spatial_attn=attn.spatial,
            in_attn=attn.in_channel,
            out_attn=attn.out_channel)

    def extra_repr(self) -> str:
        s = (f'{self.in_channels}, {self.out_channels}, '
             f'kernel_size={self.kernel_size}, stride={self.stride}, '
             f'num_kernels={self.num_kernels}')
        if self.padding != (0, 0):
            s += f', padding={self.padding}'
        if self.dilation != (1, 1):
            s += f', dilation={self.dilation}'
        if self.groups != 1:
            s += f', groups={self.groups}'
        if self.bias is None:
            s += ', bias=False'
        return s


class TemperatureMixin:
    """A softmax/sigmoid temperature ``T > 0`` that is not saved."""

    _temperature: float

    @property
    def temperature(self) -> float:
        """Temperature dividing the attention logits."""
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        value = float(value)
        if not value > 0:
            raise ValueError(f'{type(self).__name__}: temperature must be '
                             f'> 0, got {value}')
        self._temperature = value


def global_average(x: Tensor) -> Tensor:
    """Global average pooling, ``[B, C, H, W]`` -> ``[B, C]``.

    Computed as a sum scaled afterwards: the gradient of the sum is a
    broadcast view of the pooled ``[B, C]`` gradient, which autograd adds to
    the conv's input gradient in one pass. ``mean``'s backward divides the
    broadcast gradient into a new feature-map-sized tensor first.
    """
    return x.sum(dim=(2, 3)) * (1.0 / (x.size(2) * x.size(3)))
