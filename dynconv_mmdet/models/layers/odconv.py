"""Omni-dimensional dynamic convolution (ODConv).

Li, Zhou, Yao. "Omni-Dimensional Dynamic Convolution", ICLR 2022
(arXiv 2209.07947). Numerically the released module (github OSVAI/ODConv),
with the same parameter names so that official checkpoints load unchanged.
"""
from typing import List, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.registry import MODELS
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from .base import (DynamicAttention, DynamicConv2d, IntOrPair,
                   TemperatureMixin, _check_positive_int, global_average)


def _linear_1x1(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """Apply a 1x1 ``nn.Conv2d`` to pooled features ``[B, C]``."""
    return F.linear(x, conv.weight.flatten(1), conv.bias)


def _synced_across_ranks(norm: nn.Module) -> bool:
    return (isinstance(norm, nn.SyncBatchNorm) and dist.is_available()
            and dist.is_initialized() and dist.get_world_size() > 1)


class ODConvAttention(nn.Module):
    """The four attentions of ODConv from one shared trunk.

    Trunk: global average pooling -> 1x1 conv ``C_in -> A`` (no bias) ->
    norm -> ReLU, with ``A = max(int(C_in * reduction), min_channels)``.
    Heads (1x1 convs with bias, logits divided by the temperature):
    ``channel_fc`` (``A -> C_in``, sigmoid), ``filter_fc`` (``A -> C_out``,
    sigmoid; absent for depthwise convs), ``spatial_fc`` (``A -> kh * kw``,
    sigmoid; absent for 1x1 kernels) and ``kernel_fc`` (``A -> K``, softmax
    over ``K``; absent for one kernel). An absent head stands for 1.

    Normalisation: ``norm_cfg`` builds the trunk norm (BN as released; a
    backbone passes its own, e.g. SyncBN). The module keeps the released name
    ``bn`` whatever the norm type. A BatchNorm in training mode cannot compute
    statistics from a single sample (the released module fails there): for a
    batch of one, the trunk is normalised with the running statistics, as in
    evaluation, and the running statistics stay unchanged. SyncBN across
    several processes uses the statistics of the global batch as usual.
    ``norm_cfg=None`` removes the norm and gives the trunk conv a bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_numel: int,
        groups: int,
        kernel_num: int,
        reduction: float = 1 / 16,
        min_channels: int = 16,
        norm_cfg: Optional[dict] = dict(type='BN')
    ) -> None:
        super().__init__()
        hidden = max(int(in_channels * reduction), min_channels)
        self.hidden_channels = hidden
        self.fc = nn.Conv2d(in_channels, hidden, 1, bias=norm_cfg is None)
        if norm_cfg is None:
            self.bn = None
        else:
            self.bn = build_norm_layer(norm_cfg, hidden)[1]
        self.channel_fc = nn.Conv2d(hidden, in_channels, 1)
        depthwise = in_channels == groups == out_channels
        self.filter_fc = None if depthwise else nn.Conv2d(
            hidden, out_channels, 1)
        self.spatial_fc = None if kernel_numel == 1 else nn.Conv2d(
            hidden, kernel_numel, 1)
        self.kernel_fc = None if kernel_num == 1 else nn.Conv2d(
            hidden, kernel_num, 1)
        self.init_weights()

    def init_weights(self) -> None:
        """Kaiming-normal (fan_out) convs with zero bias; norm 1 / 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (_BatchNorm, nn.GroupNorm)):
                if m.weight is not None:
                    nn.init.ones_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _normalise(self, z: Tensor) -> Tensor:
        if self.bn is None:
            return z
        norm = self.bn
        if (isinstance(norm, _BatchNorm) and norm.running_mean is not None
                and (not norm.training or
                     (z.size(0) == 1 and not _synced_across_ranks(norm)))):
            # Running statistics: evaluation, or one sample in training (the
            # running statistics stay unchanged).
            return F.batch_norm(z, norm.running_mean, norm.running_var,
                                norm.weight, norm.bias, False, 0.0, norm.eps)
        return norm(z.view(z.size(0), -1, 1, 1)).view(z.size(0), -1)

    def _heads(self) -> List[Tuple[str, nn.Conv2d]]:
        """``(attention name, head)`` of the present heads."""
        heads = (('in_channel', self.channel_fc), ('out_channel',
                                                   self.filter_fc),
                 ('spatial', self.spatial_fc), ('kernel', self.kernel_fc))
        return [(name, head) for name, head in heads if head is not None]

    def forward(self, x: Tensor, temperature: float) -> DynamicAttention:
        """Input ``[B, C_in, H, W]`` -> attentions (see the class doc).

        The heads run as one matrix product over their concatenated weights,
        with one sigmoid (and one softmax for ``kernel_fc``): the same
        numbers as separate 1x1 convs with a third of the operator calls.
        """
        z = _linear_1x1(global_average(x), self.fc)
        z = F.relu(self._normalise(z))
        heads = self._heads()
        logits = F.linear(z,
                          torch.cat([h.weight.flatten(1) for _, h in heads]),
                          torch.cat([h.bias for _, h in heads]))
        if temperature != 1:
            logits = logits / temperature
        # One sigmoid over all logits: the K kernel logits go through it too
        # (unused; the kernel attention is their softmax), which is cheaper
        # than slicing them off first.
        gates = dict(
            zip([name for name, _ in heads],
                torch.sigmoid(logits).split([h.out_channels for _, h in heads],
                                            dim=1)))
        kernel = None
        if self.kernel_fc is not None:
            kernel = torch.softmax(
                logits[:, -self.kernel_fc.out_channels:], dim=1)
        return DynamicAttention(
            kernel=kernel,
            spatial=gates.get('spatial'),
            in_channel=gates.get('in_channel'),
            out_channel=gates.get('out_channel'))


@MODELS.register_module()
class ODConv2d(TemperatureMixin, DynamicConv2d):
    """Omni-dimensional dynamic convolution, a drop-in conv layer.

    ``y = a_f * conv(x * a_c, sum_i a_wi * a_s * W_i)`` with the attentions of
    :class:`ODConvAttention` computed from the layer's own input.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
            groups, bias: As :class:`DynamicConv2d`.
        kernel_num (int): Number of kernels ``K`` (1 or 4 in the paper).
        reduction (float): Trunk width ratio. Default: 1/16.
        min_channels (int): Minimal trunk width. Default: 16.
        temperature (float): Divides all attention logits. Default: 1.
        norm_cfg (dict, optional): Trunk norm. Default: ``dict(type='BN')``.

    Shapes: input ``[B, C_in, H, W]``, weight
    ``[K, C_out, C_in / groups, kh, kw]``, output ``[B, C_out, H', W']``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        padding: IntOrPair = 0,
        dilation: IntOrPair = 1,
        groups: int = 1,
        bias: bool = False,
        kernel_num: int = 1,
        reduction: float = 1 / 16,
        min_channels: int = 16,
        temperature: float = 1.0,
        norm_cfg: Optional[dict] = dict(type='BN')
    ) -> None:
        _check_positive_int('ODConv2d', 'kernel_num', kernel_num)
        _check_positive_int('ODConv2d', 'min_channels', min_channels)
        if not 0 < reduction <= 1:
            raise ValueError('ODConv2d: reduction must be in (0, 1], got '
                             f'{reduction}')
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, kernel_num)
        self.temperature = temperature
        self.attention = ODConvAttention(
            in_channels,
            out_channels,
            self.kernel_size[0] * self.kernel_size[1],
            groups,
            kernel_num,
            reduction=reduction,
            min_channels=min_channels,
            norm_cfg=norm_cfg)
        self.init_weights()

    @property
    def kernel_num(self) -> int:
        """Number of kernels ``K``."""
        return self.num_kernels

    def init_weights(self) -> None:
        """Kernels and attention as released (Kaiming fan_out, BN 1/0)."""
        super().init_weights()
        self.attention.init_weights()

    def compute_attention(self, x: Tensor) -> DynamicAttention:
        return self.attention(x, self.temperature)
