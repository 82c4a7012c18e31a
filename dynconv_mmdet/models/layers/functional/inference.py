"""The inference form of :func:`~.conv.dynamic_conv2d`: for calls that
record no autograd graph (:func:`~.modes.eager_inference`)."""
import functools
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .aggregation import has_per_kernel_attention
from .conv import dynamic_conv2d
from .geometry import fold_channel_attention


def dynamic_conv2d_inference(x: Tensor,
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
    """:func:`dynamic_conv2d` for calls that record no autograd graph.

    Same arguments, same result and the same placement of the channel
    attentions (:func:`~.geometry.fold_channel_attention`); for the callers
    of :func:`~.modes.eager_inference` only (the result of an in-place
    operation cannot be differentiated). For one image with ungrouped or
    depthwise kernels, the kernel is built with 4-D views of the attentions
    and every factor after the first multiplies it in place; the output
    attention and the bias scale the convolution's output in place. Other
    shapes use
    :func:`dynamic_conv2d`. The inputs are never modified.
    """
    num_kernels, out_channels, in_per_group, kh, kw = weight.shape
    depthwise = in_per_group == 1 and out_channels == groups
    if (x.size(0) != 1 or not (groups == 1 or depthwise)
            or has_per_kernel_attention(spatial_attn, in_attn, out_attn)):
        return dynamic_conv2d(x, weight, bias, stride, padding, dilation,
                              groups, kernel_attn, spatial_attn, in_attn,
                              out_attn)
    in_channels = x.size(1)
    fold_in, fold_out = _fold_decisions(
        x.shape, weight.shape, stride, padding, dilation, groups,
        kernel_attn is not None or spatial_attn is not None, in_attn
        is not None, out_attn is not None)
    fresh = kernel_attn is not None
    if fresh:
        # [1, K] @ [K, C_out * C_in/g * kh * kw]
        kernel = torch.mm(kernel_attn,
                          weight.reshape(num_kernels,
                                         -1)).view(out_channels, in_per_group,
                                                   kh, kw)
    else:
        kernel = weight[0]
    # The input side of the kernel (channels on dim 1 ungrouped, on dim 0
    # depthwise, times the spatial attention: small), then its output side.
    in_side = None
    if fold_in:
        in_side = (
            in_attn.view(1, in_channels, 1, 1)
            if groups == 1 else in_attn.view(in_channels, 1, 1, 1))
    if spatial_attn is not None:
        spatial = spatial_attn.view(1, 1, kh, kw)
        in_side = spatial if in_side is None else in_side * spatial
    if in_side is not None:
        kernel = kernel.mul_(in_side) if fresh else kernel * in_side
        fresh = True
    if fold_out:
        out_side = out_attn.view(out_channels, 1, 1, 1)
        kernel = kernel.mul_(out_side) if fresh else kernel * out_side
    if in_attn is not None and not fold_in:
        x = x * in_attn.view(1, in_channels, 1, 1)
    out = F.conv2d(x, kernel, None, stride, padding, dilation, groups)
    if out_attn is not None and not fold_out:
        out.mul_(out_attn.view(1, out_channels, 1, 1))
    if bias is not None:
        out.add_(bias.view(1, out_channels, 1, 1))
    return out


@functools.lru_cache(maxsize=4096)
def _cached_fold_decisions(*args) -> Tuple[bool, bool]:
    return fold_channel_attention(*args)


def _fold_decisions(*args) -> Tuple[bool, bool]:
    """:func:`fold_channel_attention` (for one image), memoised: the
    decisions depend on shapes only, and an inference call should not
    recompute them."""
    try:
        return _cached_fold_decisions(*args)
    except TypeError:  # unhashable arguments (e.g. lists)
        return fold_channel_attention(*args)
