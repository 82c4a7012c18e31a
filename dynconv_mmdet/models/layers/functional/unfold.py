"""A per-sample convolution as ``unfold`` and a batched matrix product
(for graphs traced for export: no batch size in the graph)."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .geometry import conv_output_size


def unfold_conv2d(x: Tensor, weight: Tensor, stride: Tuple[int, int],
                  padding: Tuple[int, int], dilation: Tuple[int, int],
                  groups: int) -> Tensor:
    """Per-sample convolution as ``unfold`` + batched matrix product.

    Nothing in the computation depends on the batch size, so an exported
    graph keeps a free batch axis. Memory: the unfolded input is
    ``kh * kw`` times the input.

    Args:
        x (Tensor): ``[B, C_in, H, W]``.
        weight (Tensor): ``[n, C_out, C_in / groups, kh, kw]``, ``n`` 1 or B.
    """
    out_channels, in_per_group, kh, kw = weight.shape[1:]
    h_out = conv_output_size(x.size(2), kh, stride[0], padding[0], dilation[0])
    w_out = conv_output_size(x.size(3), kw, stride[1], padding[1], dilation[1])
    cols = F.unfold(x, (kh, kw), dilation, padding, stride)
    cols = cols.unflatten(1, (groups, -1))  # [B, g, C_in_g * kk, L]
    kernels = weight.reshape(-1, groups, out_channels // groups,
                             in_per_group * kh * kw)
    out = torch.matmul(kernels, cols)  # [B, g, C_out_g, L]
    return out.flatten(1, 2).unflatten(2, (h_out, w_out))
