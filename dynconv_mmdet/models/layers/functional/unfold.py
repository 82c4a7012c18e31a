"""A per-sample convolution as ``unfold`` and a batched matrix product
(for graphs traced for export: no batch size in the graph)."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .geometry import conv_output_size


def unfold_conv2d(x: Tensor,
                  weight: Tensor,
                  stride: Tuple[int, int],
                  padding: Tuple[int, int],
                  dilation: Tuple[int, int],
                  groups: int,
                  kernel_size: Optional[Tuple[int, int]] = None) -> Tensor:
    """Per-sample convolution as ``unfold`` + batched matrix product.

    Nothing in the computation depends on the batch size, so an exported
    graph keeps a free batch axis; the kernel size comes from the layer
    (``kernel_size``), so that free height and width stay free too, and
    only ``reshape`` is used (ONNX opset 11 has no ``unflatten``). Memory:
    the unfolded input is ``kh * kw`` times the input.

    Args:
        x (Tensor): ``[B, C_in, H, W]``.
        weight (Tensor): ``[n, C_out, C_in / groups, kh, kw]``, ``n`` 1 or B.
        kernel_size (tuple[int, int], optional): ``(kh, kw)``; default: read
            from ``weight`` (numbers in eager mode; pass it when tracing).
    """
    if kernel_size is None:
        kernel_size = (int(weight.size(-2)), int(weight.size(-1)))
    kh, kw = kernel_size
    out_channels = weight.size(1)
    h_out = conv_output_size(x.size(2), kh, stride[0], padding[0], dilation[0])
    w_out = conv_output_size(x.size(3), kw, stride[1], padding[1], dilation[1])
    cols = F.unfold(x, (kh, kw), dilation, padding, stride)
    batch = cols.size(0)
    # [B, g, C_in_g * kh * kw, L]
    cols = cols.reshape(batch, groups, -1, cols.size(2))
    kernels = weight.reshape(
        weight.size(0), groups, out_channels // groups, -1)
    out = torch.matmul(kernels, cols)  # [B, g, C_out_g, L]
    return out.reshape(batch, out_channels, h_out, w_out)
