"""Shared computation of dynamic convolutions.

Every dynamic convolution in this package is an instance of

    y_b = a_out_b * conv(x_b * a_in_b, sum_i a_kernel_bi * a_spatial_b * W_i)

for a sample ``b`` (Li et al., "Omni-Dimensional Dynamic Convolution", ICLR
2022, eq. 3). CondConv (Yang et al., NeurIPS 2019) and DyConv (Chen et al.,
CVPR 2020) only use ``a_kernel``.

The released implementations fold the batch into convolution groups, multiply
the attentions into whole feature maps and materialise a
``[B, K, C_out, C_in, k, k]`` tensor (:func:`batch_folded_conv2d`, kept as the
numerical and speed reference). :func:`dynamic_conv2d` computes the same
result with exact algebraic rewrites:

* the kernel mixture is one matrix product ``[B, K] @ [K, C_out*C_in*k*k]``
  (no ``[B, K, ...]`` intermediate);
* the input- and output-channel attentions are multiplied into the per-sample
  kernel when the kernel is smaller than the feature map they would otherwise
  scale (always the case for the 1x1 convs of a detection backbone), and into
  the feature maps otherwise;
* one image (or one kernel for the whole batch) runs the library
  convolution with its kernel, exactly as a static conv does;
* a pointwise (1x1, unpadded, ungrouped) convolution with per-sample kernels
  is a batched matrix product ``[B, C_out, C_in] @ [B, C_in, H*W]``, which
  needs neither grouped convolutions nor any elementwise pass over the
  feature maps, forward or backward;
* other per-sample kernels fold the batch into the groups of one
  convolution; while a graph is traced for export
  (ONNX, ``torch.export``, ``torch.jit.trace``) they use ``unfold`` and a
  batched matrix product instead, so that no batch size is baked into the
  graph;
* when no per-sample kernel remains (one kernel, no spatial attention and the
  channel attentions on the feature maps) the static weight is used.

:func:`formulation` switches every :func:`dynamic_conv2d` call to
:func:`batch_folded_conv2d`; it exists for the benchmark
(``tools/analysis_tools/benchmark_dynconv.py``) and nothing else uses it.
"""
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

FORMULATIONS = ('ours', 'released')
_formulation = 'ours'


@contextmanager
def formulation(name: str) -> Iterator[None]:
    """Select what :func:`dynamic_conv2d` computes inside the context.

    ``'ours'`` (the default) is the rewritten computation, ``'released'``
    routes every call to :func:`batch_folded_conv2d`, the formulation of the
    released CondConv / DyConv / ODConv code. Only the benchmark uses this
    switch, to time both formulations on the same modules.

    Args:
        name (str): ``'ours'`` or ``'released'``.
    """
    global _formulation
    if name not in FORMULATIONS:
        raise ValueError(f'unknown formulation {name!r}; choose one of '
                         f'{FORMULATIONS}')
    previous = _formulation
    _formulation = name
    try:
        yield
    finally:
        _formulation = previous


def get_formulation() -> str:
    """The formulation :func:`dynamic_conv2d` currently computes."""
    return _formulation


def _tracing_for_export() -> bool:
    """Whether a graph is being traced for export (batch must stay free)."""
    return (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_exporting())


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

    Args:
        weight (Tensor): Kernels, shape ``[K, C_out, C_in / groups, kh, kw]``.
        kernel_attn (Tensor, optional): Kernel weights, shape ``[B, K]``.
            ``None`` requires ``K == 1``.
        spatial_attn (Tensor, optional): Shape ``[B, kh * kw]``.
        in_attn (Tensor, optional): Input-channel attention, ``[B, C_in]``.
        out_attn (Tensor, optional): Output-channel attention, ``[B, C_out]``.
        groups (int): Convolution groups.

    Returns:
        Tensor: Per-sample kernels ``[B, C_out, C_in / groups, kh, kw]``
        (``B`` is 1 when no attention is given).
    """
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


def conv_output_size(size: int, kernel: int, stride: int, padding: int,
                     dilation: int) -> int:
    """Spatial output size of a convolution along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _is_pointwise(weight: Tensor, padding: Tuple[int, int],
                  groups: int) -> bool:
    return (weight.size(-1) == 1 and weight.size(-2) == 1
            and tuple(padding) == (0, 0) and groups == 1)


def _pointwise_matmul(x: Tensor, weight: Tensor, stride: Tuple[int,
                                                               int]) -> Tensor:
    """1x1 convolution as a (batched) matrix product.

    Args:
        x (Tensor): ``[B, C_in, H, W]``, contiguous or channels-last.
        weight (Tensor): ``[n, C_out, C_in, 1, 1]`` with ``n`` 1 (shared)
            or ``B``.

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``, in the memory format of ``x``.
    """
    if tuple(stride) != (1, 1):
        x = x[:, :, ::stride[0], ::stride[1]]
    kernels = weight.flatten(2)  # [n, C_out, C_in]
    if (not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)):
        # [B, H * W, C_in] @ [n, C_in, C_out] -> [B, H * W, C_out]
        out = torch.matmul(
            x.permute(0, 2, 3, 1).flatten(1, 2), kernels.transpose(1, 2))
        return out.unflatten(1, x.shape[2:]).permute(0, 3, 1, 2)
    out = torch.matmul(kernels, x.flatten(2))  # [B, C_out, H * W]
    return out.unflatten(2, x.shape[2:])


def _unfold_conv2d(x: Tensor, weight: Tensor, stride: Tuple[int, int],
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


def _conv_per_sample(x: Tensor, kernels: Tensor, shared: bool,
                     stride: Tuple[int, int], padding: Tuple[int, int],
                     dilation: Tuple[int, int], groups: int,
                     tracing: bool) -> Tensor:
    """Convolve every sample with its own kernel.

    One image or one kernel: the library convolution. Otherwise pointwise
    kernels use a batched matrix product, other kernels one convolution per
    batch (the batch folded into the groups), or ``unfold`` and a matrix
    product while tracing for export.

    Args:
        x (Tensor): Input ``[B, C_in, H, W]``.
        kernels (Tensor): ``[B, C_out, C_in / groups, kh, kw]``, or
            ``[1, ...]`` with ``shared``.
        shared (bool): ``kernels[0]`` serves every sample (decided by the
            caller, not by a batch size).
        tracing (bool): A graph is traced for export (the batch stays free).

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``.
    """
    batch, in_channels, height, width = x.shape
    single = shared or (batch == 1 and not tracing)
    if single:
        return F.conv2d(x, kernels[0], None, stride, padding, dilation, groups)
    if _is_pointwise(kernels, padding, groups):
        return _pointwise_matmul(x, kernels, stride)
    if tracing:
        return _unfold_conv2d(x, kernels, stride, padding, dilation, groups)
    out_channels = kernels.size(1)
    out = F.conv2d(
        x.reshape(1, batch * in_channels, height, width),
        kernels.reshape(batch * out_channels, *kernels.shape[2:]), None,
        stride, padding, dilation, groups * batch)
    return out.view(batch, out_channels, out.size(-2), out.size(-1))


def fold_channel_attention(x_shape: Tuple[int, int, int, int],
                           weight_shape: Tuple[int, int, int, int, int],
                           stride: Tuple[int, int],
                           padding: Tuple[int, int],
                           dilation: Tuple[int, int],
                           groups: int,
                           per_sample: bool,
                           has_in: bool,
                           has_out: bool,
                           batch_free: bool = False) -> Tuple[bool, bool]:
    """Where :func:`dynamic_conv2d` applies the channel attentions.

    Scaling a per-sample kernel costs its number of elements per sample,
    scaling a feature map the map's: the cheaper side is chosen. Without a
    per-sample kernel (one kernel, no spatial attention), folding pays off
    for pointwise convs (a batched matrix product either way) and for a
    single sample (a plain convolution); with ``batch_free`` (tracing for
    export) the batch size is not looked at.

    Args:
        x_shape: ``(B, C_in, H, W)``.
        weight_shape: ``(K, C_out, C_in / groups, kh, kw)``.
        per_sample (bool): A kernel or spatial attention is present.
        has_in, has_out (bool): Input / output channel attention present.

    Returns:
        tuple[bool, bool]: Fold the input / output attention into the kernel.
    """
    batch, in_channels, height, width = x_shape
    _, out_channels, in_per_group, kh, kw = weight_shape
    h_out = conv_output_size(height, kh, stride[0], padding[0], dilation[0])
    w_out = conv_output_size(width, kw, stride[1], padding[1], dilation[1])
    kernel_numel = out_channels * in_per_group * kh * kw
    pointwise = (kh == kw == 1 and tuple(padding) == (0, 0) and groups == 1)
    if per_sample or pointwise:
        may_fold = True
    else:
        may_fold = not batch_free and batch == 1
    fold_in = (
        has_in and may_fold and kernel_numel <= in_channels * height * width)
    fold_out = (
        has_out and may_fold and kernel_numel <= out_channels * h_out * w_out)
    return fold_in, fold_out


def dynamic_conv2d(x: Tensor,
                   weight: Tensor,
                   bias: Optional[Tensor] = None,
                   stride: Tuple[int, int] = (1, 1),
                   padding: Tuple[int, int] = (0, 0),
                   dilation: Tuple[int, int] = (1, 1),
                   groups: int = 1,
                   kernel_attn: Optional[Tensor] = None,
                   spatial_attn: Optional[Tensor] = None,
                   in_attn: Optional[Tensor] = None,
                   out_attn: Optional[Tensor] = None) -> Tensor:
    """Dynamic convolution with per-sample attentions.

    ``y_b = a_out_b * conv(x_b * a_in_b, sum_i a_kernel_bi * a_spatial_b *
    W_i) + bias`` (ODConv, ICLR 2022, eq. 3; CondConv, NeurIPS 2019 and
    DyConv, CVPR 2020 with ``a_kernel`` only), computed as described in the
    module docstring.

    Args:
        x (Tensor): Input ``[B, C_in, H, W]``.
        weight (Tensor): Kernels ``[K, C_out, C_in / groups, kh, kw]``.
        bias (Tensor, optional): Static bias ``[C_out]`` added last.
        kernel_attn, spatial_attn, in_attn, out_attn (Tensor, optional):
            Attentions of shapes ``[B, K]``, ``[B, kh * kw]``, ``[B, C_in]``
            and ``[B, C_out]``; ``None`` means the constant 1.

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``.
    """
    if _formulation == 'released':
        return batch_folded_conv2d(x, weight, bias, stride, padding, dilation,
                                   groups, kernel_attn, spatial_attn, in_attn,
                                   out_attn)
    batch, in_channels, height, width = x.shape
    out_channels = weight.size(1)
    per_sample = kernel_attn is not None or spatial_attn is not None
    tracing = _tracing_for_export()
    fold_in, fold_out = fold_channel_attention(
        tuple(x.shape), tuple(weight.shape), stride, padding, dilation, groups,
        per_sample, in_attn is not None, out_attn is not None, tracing)
    if in_attn is not None and not fold_in:
        x = x * in_attn.reshape(batch, in_channels, 1, 1).to(x.dtype)
    kernels = aggregate_kernels(
        weight,
        kernel_attn=kernel_attn,
        spatial_attn=spatial_attn,
        in_attn=in_attn if fold_in else None,
        out_attn=out_attn if fold_out else None,
        groups=groups)
    shared = not (per_sample or fold_in or fold_out)
    out = _conv_per_sample(x, kernels, shared, stride, padding, dilation,
                           groups, tracing)
    if out_attn is not None and not fold_out:
        out = out * out_attn.reshape(batch, out_channels, 1, 1).to(out.dtype)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1).to(out.dtype)
    return out


def batch_folded_conv2d(x: Tensor,
                        weight: Tensor,
                        bias: Optional[Tensor] = None,
                        stride: Tuple[int, int] = (1, 1),
                        padding: Tuple[int, int] = (0, 0),
                        dilation: Tuple[int, int] = (1, 1),
                        groups: int = 1,
                        kernel_attn: Optional[Tensor] = None,
                        spatial_attn: Optional[Tensor] = None,
                        in_attn: Optional[Tensor] = None,
                        out_attn: Optional[Tensor] = None) -> Tensor:
    """The released formulation, kept as a numerical and speed reference.

    Multiplies the channel attentions into the feature maps, builds the
    ``[B, K, C_out, C_in / groups, kh, kw]`` product, sums it over ``K`` and
    runs one convolution with the batch folded into the groups. Same arguments
    and result as :func:`dynamic_conv2d`.
    """
    batch, in_channels, height, width = x.shape
    num_kernels, out_channels, in_per_group, kh, kw = weight.shape
    if in_attn is not None:
        x = x * in_attn.reshape(batch, in_channels, 1, 1)
    scaled = weight.unsqueeze(0)
    if spatial_attn is not None:
        scaled = scaled * spatial_attn.reshape(batch, 1, 1, 1, kh, kw)
    if kernel_attn is not None:
        scaled = scaled * kernel_attn.reshape(batch, num_kernels, 1, 1, 1, 1)
    kernels = scaled.sum(dim=1).expand(batch, -1, -1, -1, -1)
    out = F.conv2d(
        x.reshape(1, batch * in_channels, height, width),
        kernels.reshape(batch * out_channels, in_per_group, kh, kw), None,
        stride, padding, dilation, groups * batch)
    out = out.view(batch, out_channels, out.size(-2), out.size(-1))
    if out_attn is not None:
        out = out * out_attn.reshape(batch, out_channels, 1, 1)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out
