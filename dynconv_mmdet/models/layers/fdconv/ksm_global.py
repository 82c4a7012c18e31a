"""The global branch of FDConv's kernel spatial modulation (KSM).

Chen et al., "Frequency Dynamic Convolution for Dense Image Prediction",
CVPR 2025; the release's ``KernelSpatialModulation_Global`` (github
Linwei-Chen/FDConv), with its parameter names.
"""
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor

from ..attention import normalise_pooled

#: Activations of the global heads (the release's ``ksm_global_act``).
GLOBAL_ACTIVATIONS = ('sigmoid', 'tanh', 'softmax')
#: The near-zero std the release gives the heads' weights.
HEAD_INIT_STD = 1e-6


class StarReLU(nn.Module):
    """``s * relu(x) ** 2 + b`` with learnable scalars ``s`` (``scale``,
    init 1) and ``b`` (``bias``, init 0); any shape."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * F.relu(x)**2 + self.bias


class GlobalAttention(NamedTuple):
    """The global attentions of one forward pass (``None``: the constant
    1): ``channel`` ``[B, C_in]``, ``filter`` ``[B, C_out]``, ``spatial``
    ``[B, kh * kw]``, ``kernel`` ``[B, P * K]``."""
    channel: Optional[Tensor]
    filter: Optional[Tensor]
    spatial: Optional[Tensor]
    kernel: Optional[Tensor]


def _head(z: Tensor, conv: nn.Conv2d) -> Tensor:
    """A 1x1 conv on pooled features ``[B, A]`` -> ``[B, out]``."""
    return F.linear(z, conv.weight.flatten(1), conv.bias)


class KernelSpatialModulationGlobal(nn.Module):
    """Four attentions from the pooled input.

    Trunk: 1x1 conv ``C_in -> A`` (``fc``, no bias, ``A = max(int(C_in *
    reduction), min_channel)``), norm (``bn``; BatchNorm as released, with
    the single-sample rule of
    :func:`~dynconv_mmdet.models.layers.attention.normalise_pooled`),
    :class:`StarReLU` (``relu``). Heads (1x1 convs with bias): ``channel_fc``
    (``C_in``), ``filter_fc`` (``C_out``; absent for depthwise convs),
    ``spatial_fc`` (``kh * kw``; absent for 1x1 kernels), ``kernel_fc``
    (``P * K``; absent for one group); ``ksm_only_kernel_att`` keeps only
    the kernel head. Activations (``act_type``): ``sigmoid(z / T) *
    att_multi`` (``1 + tanh(z / T)`` with ``'tanh'``) for the channel,
    filter and spatial heads (``T``: ``temp``), and ``sigmoid(z / T_k) * 2 /
    (P K)``, ``(1 + tanh(z / T_k)) / (P K)`` or ``softmax(z / T_k)`` for the
    kernel head (``T_k``: ``kernel_temp``).

    Initialisation (the release's): Kaiming-normal (fan_out) convs with zero
    bias, norm 1 / 0, then ``channel_fc``, ``spatial_fc`` and ``kernel_fc``
    weights normal with std 1e-6. The release meant ``filter_fc`` to get the
    same but tests ``isinstance`` on a bound method, so it keeps its Kaiming
    init: the published numbers were trained so, and that is the default;
    ``neutral_filter_init=True`` gives it the near-zero init too.
    """

    def __init__(self,
                 in_planes: int,
                 out_planes: int,
                 kernel_size: Tuple[int, int],
                 groups: int = 1,
                 reduction: float = 0.0625,
                 kernel_num: int = 4,
                 min_channel: int = 16,
                 temp: float = 1.0,
                 kernel_temp: float = 1.0,
                 att_multi: float = 2.0,
                 ksm_only_kernel_att: bool = False,
                 act_type: str = 'sigmoid',
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 neutral_filter_init: bool = False) -> None:
        super().__init__()
        hidden = max(int(in_planes * reduction), min_channel)
        self.hidden_channels = hidden
        self.kernel_num = kernel_num
        self.temperature = temp
        self.kernel_temp = kernel_temp
        self.att_multi = att_multi
        self.act_type = act_type
        self.neutral_filter_init = neutral_filter_init
        self.fc = nn.Conv2d(in_planes, hidden, 1, bias=False)
        self.bn = build_norm_layer(norm_cfg, hidden)[1]
        self.relu = StarReLU()
        depthwise = in_planes == groups == out_planes
        numel = kernel_size[0] * kernel_size[1]
        only_kernel = ksm_only_kernel_att
        self.channel_fc = None if only_kernel else nn.Conv2d(
            hidden, in_planes, 1)
        self.filter_fc = None if only_kernel or depthwise else nn.Conv2d(
            hidden, out_planes, 1)
        self.spatial_fc = None if only_kernel or numel == 1 else nn.Conv2d(
            hidden, numel, 1)
        self.kernel_fc = None if kernel_num == 1 else nn.Conv2d(
            hidden, kernel_num, 1)
        self.init_weights()

    def init_weights(self) -> None:
        """The release's initialisation (see the class doc)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if self.bn.weight is not None:
            nn.init.ones_(self.bn.weight)
            nn.init.zeros_(self.bn.bias)
        near_zero = [self.spatial_fc, self.kernel_fc, self.channel_fc]
        if self.neutral_filter_init:
            near_zero.append(self.filter_fc)
        for head in near_zero:
            if head is not None:
                nn.init.normal_(head.weight, std=HEAD_INIT_STD)
        self.relu.scale.data.fill_(1.0)
        self.relu.bias.data.zero_()

    def _gate(self, logits: Tensor) -> Tensor:
        if self.temperature != 1:
            logits = logits / self.temperature
        if self.act_type == 'tanh':
            return 1 + torch.tanh(logits)
        return torch.sigmoid(logits) * self.att_multi

    def _kernel_gate(self, logits: Tensor) -> Tensor:
        if self.kernel_temp != 1:
            logits = logits / self.kernel_temp
        count = logits.size(1)
        if self.act_type == 'softmax':
            return torch.softmax(logits, dim=1)
        if self.act_type == 'tanh':
            return (1 + torch.tanh(logits)) / count
        return torch.sigmoid(logits) * 2 / count

    def forward(self, pooled: Tensor) -> GlobalAttention:
        """Pooled input ``[B, C_in]`` -> :class:`GlobalAttention`."""
        z = _head(pooled, self.fc)
        z = self.relu(normalise_pooled(self.bn, z))

        def gate(head: Optional[nn.Conv2d]) -> Optional[Tensor]:
            return None if head is None else self._gate(_head(z, head))

        kernel = None
        if self.kernel_fc is not None:
            kernel = self._kernel_gate(_head(z, self.kernel_fc))
        return GlobalAttention(
            gate(self.channel_fc), gate(self.filter_fc), gate(self.spatial_fc),
            kernel)

    def heads(self) -> Tuple[nn.Conv2d, ...]:
        """The present heads, in the order channel, filter, spatial,
        kernel."""
        return tuple(
            h for h in (self.channel_fc, self.filter_fc, self.spatial_fc,
                        self.kernel_fc) if h is not None)

    def flops(self) -> int:
        """Multiply-adds per sample: the trunk and the heads."""
        hidden = self.hidden_channels
        return (self.fc.in_channels * hidden + sum(hidden * h.out_channels
                                                   for h in self.heads()))
