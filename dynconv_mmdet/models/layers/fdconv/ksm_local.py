"""The local branch of FDConv's kernel spatial modulation (KSM): one
attention value per kernel element, from the pooled input.

Chen et al., "Frequency Dynamic Convolution for Dense Image Prediction",
CVPR 2025; the release's ``KernelSpatialModulation_Local`` (an ECA-style
1-D convolution along the channels; github Linwei-Chen/FDConv), with its
parameter names.
"""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .frequency import local_kernel_size

#: Activations of the local branch (the release's ``ksm_local_act``).
LOCAL_ACTIVATIONS = ('sigmoid', 'tanh')


class KernelSpatialModulationLocal(nn.Module):
    """``LayerNorm`` over the ``C_in`` pooled values (``norm``), then a 1-D
    convolution (``conv``, ``1 -> C_out * kh * kw`` channels, kernel ``ks =
    round(log2(C_in) / 2 + 0.5) // 2 * 2 + 1``, no bias, weights 1e-6) along
    them: a logit for every ``(o, i, y, x)`` of the kernel, then
    ``sigmoid * att_multi`` (or ``1 + tanh``).

    Args:
        in_channels (int): ``C_in``.
        out_channels (int): ``C_out``.
        kernel_size (tuple[int, int]): ``(kh, kw)``.
        att_multi (float): Scale of the sigmoid.
        act (str): ``'sigmoid'`` or ``'tanh'``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: Tuple[int, int],
                 att_multi: float = 2.0,
                 act: str = 'sigmoid') -> None:
        super().__init__()
        self.out_channels = out_channels
        self.kernel_size = tuple(kernel_size)
        self.att_multi = att_multi
        self.act = act
        width = out_channels * kernel_size[0] * kernel_size[1]
        ks = local_kernel_size(in_channels)
        self.conv = nn.Conv1d(
            1, width, kernel_size=ks, padding=(ks - 1) // 2, bias=False)
        self.norm = nn.LayerNorm(in_channels)
        self.init_weights()

    def init_weights(self) -> None:
        """The release's: conv weights 1e-6, norm 1 / 0."""
        nn.init.constant_(self.conv.weight, 1e-6)
        nn.init.ones_(self.norm.weight)
        nn.init.zeros_(self.norm.bias)

    def forward(self, pooled: Tensor) -> Tensor:
        """Pooled input ``[B, C_in]`` -> attention
        ``[B, C_out, C_in, kh, kw]``."""
        batch, channels = pooled.shape
        z = self.norm(pooled.unsqueeze(1))  # [B, 1, C_in]
        logits = F.conv1d(z, self.conv.weight, None, 1, self.conv.padding)
        kh, kw = self.kernel_size
        logits = logits.view(batch, self.out_channels, kh, kw,
                             channels).permute(0, 1, 4, 2, 3)
        if self.act == 'tanh':
            return 1 + torch.tanh(logits)
        return torch.sigmoid(logits) * self.att_multi

    def flops(self) -> int:
        """Multiply-adds per sample (the norm excluded)."""
        conv = self.conv
        return conv.out_channels * self.norm.normalized_shape[0] * \
            conv.kernel_size[0]
