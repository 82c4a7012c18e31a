"""A 1x1 convolution with per-sample kernels as a (batched) matrix
product."""
from typing import Optional, Tuple

import torch
from torch import Tensor


def is_pointwise(weight: Tensor, padding: Tuple[int, int],
                 groups: int) -> bool:
    """Whether ``weight`` (``[..., kh, kw]``) with ``padding`` and ``groups``
    is a pointwise convolution: 1x1, unpadded, ungrouped."""
    return (weight.size(-1) == 1 and weight.size(-2) == 1
            and tuple(padding) == (0, 0) and groups == 1)


def pointwise_matmul(x: Tensor,
                     weight: Tensor,
                     stride: Tuple[int, int],
                     reads: Optional[Tensor] = None) -> Tensor:
    """1x1 convolution as a (batched) matrix product.

    Args:
        x (Tensor): ``[B, C_in, H, W]``, contiguous or channels-last.
        weight (Tensor): ``[n, C_out, C_in, 1, 1]`` with ``n`` 1 (shared)
            or ``B``.
        reads (Tensor, optional): ``x.flatten(2)`` made by
            :func:`~.conv.prepare_conv_input` (contiguous ``x``, stride 1,
            ``n = B``).

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``, in the memory format of ``x``.
    """
    if reads is not None and reads.dim() == 3:
        # [B, C_out, C_in] @ [B, C_in, H * W]: bmm's input gradient is a
        # new tensor (matmul's would be a view)
        out = torch.bmm(weight.flatten(2), reads)
        return out.view(out.size(0), out.size(1), x.size(2), x.size(3))
    if tuple(stride) != (1, 1):
        x = x[:, :, ::stride[0], ::stride[1]]
    kernels = weight.flatten(2)  # [n, C_out, C_in]
    if (not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)):
        # [B, H * W, C_in] @ [n, C_in, C_out] -> [B, H * W, C_out]
        out = torch.matmul(
            x.permute(0, 2, 3, 1).flatten(1, 2), kernels.transpose(1, 2))
        out = out.view(out.size(0), x.size(2), x.size(3), out.size(2))
        return out.permute(0, 3, 1, 2)
    out = torch.matmul(kernels, x.flatten(2))  # [B, C_out, H * W]
    # reshape, not unflatten: ONNX opsets below 13 have no unflatten
    return out.view(out.size(0), out.size(1), x.size(2), x.size(3))
