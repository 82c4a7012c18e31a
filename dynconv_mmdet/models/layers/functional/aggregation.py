"""Kernel aggregation: the per-sample kernels of a dynamic convolution."""
from typing import Optional

import torch
from torch import Tensor


def aggregate_kernels(weight: Tensor,
                      kernel_attn: Optional[Tensor] = None,
                      spatial_attn: Optional[Tensor] = None,
                      in_attn: Optional[Tensor] = None,
                      out_attn: Optional[Tensor] = None,
                      groups: int = 1) -> Tensor:
    """Mix the kernels of a dynamic convolution for every sample.

    ``W_b = a_out_b * a_in_b * a_spatial_b * sum_i a_kernel_bi * W_i``
    (ODConv, ICLR 2022, eq. 3), with the kernel mixture computed as one
    matrix product.

    The spatial and channel attentions may also come one per kernel,
    ``[B, K, n]`` (ODConv's "unshared" variant): then
    ``W_b = sum_i a_kernel_bi * a_out_bi * a_in_bi * a_spatial_bi * W_i``,
    accumulated kernel by kernel (:func:`_aggregate_per_kernel`).

    Args:
        weight (Tensor): Kernels, shape ``[K, C_out, C_in / groups, kh, kw]``.
        kernel_attn (Tensor, optional): Kernel weights, shape ``[B, K]``.
            ``None`` requires ``K == 1``.
        spatial_attn (Tensor, optional): Shape ``[B, kh * kw]`` or
            ``[B, K, kh * kw]``.
        in_attn (Tensor, optional): Input-channel attention, ``[B, C_in]`` or
            ``[B, K, C_in]``.
        out_attn (Tensor, optional): Output-channel attention, ``[B, C_out]``
            or ``[B, K, C_out]``.
        groups (int): Convolution groups.

    Returns:
        Tensor: Per-sample kernels ``[B, C_out, C_in / groups, kh, kw]``
        (``B`` is 1 when no attention is given).
    """
    if has_per_kernel_attention(spatial_attn, in_attn, out_attn):
        return _aggregate_per_kernel(weight, kernel_attn, spatial_attn,
                                     in_attn, out_attn, groups)
    num_kernels, out_channels, in_per_group, kh, kw = weight.shape
    if kernel_attn is None:
        if num_kernels != 1:
            raise ValueError('kernel_attn is required when there are '
                             f'{num_kernels} kernels')
        mixed = weight
    else:
        mixed = torch.matmul(kernel_attn, weight.reshape(num_kernels, -1))
        mixed = mixed.view(-1, out_channels, in_per_group, kh, kw)
    out_per_group = out_channels // groups
    # Attentions that scale the input side of the kernel: [B, g, 1, Cin_g, kk]
    in_scale = None
    if in_attn is not None:
        in_scale = in_attn.reshape(-1, groups, 1, in_per_group, 1)
    if spatial_attn is not None:
        spatial = spatial_attn.reshape(-1, 1, 1, 1, kh * kw)
        in_scale = spatial if in_scale is None else in_scale * spatial
    if in_scale is None and out_attn is None:
        return mixed
    mixed = mixed.reshape(-1, groups, out_per_group, in_per_group, kh * kw)
    if in_scale is not None:
        mixed = mixed * in_scale
    if out_attn is not None:
        mixed = mixed * out_attn.reshape(-1, groups, out_per_group, 1, 1)
    return mixed.reshape(-1, out_channels, in_per_group, kh, kw)


def has_per_kernel_attention(*attentions: Optional[Tensor]) -> bool:
    """Whether any of the attentions comes one per kernel (``[B, K, n]``)."""
    for attn in attentions:
        if attn is not None and attn.dim() == 3:
            return True
    return False


def _aggregate_per_kernel(weight: Tensor, kernel_attn: Optional[Tensor],
                          spatial_attn: Optional[Tensor],
                          in_attn: Optional[Tensor],
                          out_attn: Optional[Tensor], groups: int) -> Tensor:
    """:func:`aggregate_kernels` with attentions one per kernel.

    For each kernel ``i``: its output side ``a_kernel_i * a_out_i``
    (``[B, C_out]``) and input side ``a_in_i * a_spatial_i``
    (``[B, C_in, kh * kw]``) scale ``W_i``; the scaled kernels are summed.
    An attention of shape ``[B, n]`` serves every kernel.
    """
    num_kernels, out_channels, in_per_group, kh, kw = weight.shape
    out_per_group = out_channels // groups
    kernels = weight.reshape(num_kernels, groups, out_per_group, in_per_group,
                             kh * kw)

    def of_kernel(attn: Optional[Tensor], i: int) -> Optional[Tensor]:
        if attn is None:
            return None
        return attn[:, i] if attn.dim() == 3 else attn

    mixed = None
    for i in range(num_kernels):
        out_side = of_kernel(out_attn, i)
        if out_side is not None:
            out_side = out_side.reshape(-1, groups, out_per_group, 1, 1)
        if kernel_attn is not None:
            weight_i = kernel_attn[:, i].reshape(-1, 1, 1, 1, 1)
            out_side = weight_i if out_side is None else out_side * weight_i
        in_side = of_kernel(in_attn, i)
        if in_side is not None:
            in_side = in_side.reshape(-1, groups, 1, in_per_group, 1)
        spatial = of_kernel(spatial_attn, i)
        if spatial is not None:
            spatial = spatial.reshape(-1, 1, 1, 1, kh * kw)
            in_side = spatial if in_side is None else in_side * spatial
        term = kernels[i]
        if out_side is not None:
            term = term * out_side
        if in_side is not None:
            term = term * in_side
        mixed = term if mixed is None else mixed + term
    return mixed.reshape(-1, out_channels, in_per_group, kh, kw)
