"""The released formulations of the dynamic convolutions: the benchmark's
reference.

The released CondConv / DyConv / ODConv code folds the batch into the groups
of one convolution, multiplies the channel attentions into whole feature maps
and materialises a ``[B, K, C_out, C_in, k, k]`` kernel product
(:func:`batch_folded_conv2d`). The layers compute the same numbers faster
(:func:`~dynconv_mmdet.models.layers.functional.dynamic_conv2d`); the
benchmark times both on the same modules and checks that they agree.

Nothing here is on the layers' forward path: :func:`released_formulation`
swaps the ``forward`` of the dynamic convs of one module for the released
computation while the context is open, and restores it afterwards. Families
whose forward is not ``dynamic_conv2d`` of their attentions register their
own reference with :func:`register_reference` (KernelWarehouse, FDConv:
:func:`fdconv_release_kernels`, the release's per-sample spectra and
stacked kernels).
"""
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models.layers import DynamicConv2d, FDConv2d, KWConv2d

ReferenceForward = Callable[[DynamicConv2d, Tensor], Tensor]
_REFERENCES: Dict[type, ReferenceForward] = {}
_UNSET = object()


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
    """The released formulation of a kernel-mixing dynamic convolution.

    Multiplies the channel attentions into the feature maps, builds the
    ``[B, K, C_out, C_in / groups, kh, kw]`` product, sums it over ``K`` and
    runs one convolution with the batch folded into the groups. Same
    arguments and result as
    :func:`~dynconv_mmdet.models.layers.functional.dynamic_conv2d`.

    Args:
        x (Tensor): Input ``[B, C_in, H, W]``.
        weight (Tensor): Kernels ``[K, C_out, C_in / groups, kh, kw]``.
        kernel_attn, spatial_attn, in_attn, out_attn (Tensor, optional):
            ``[B, K]``, ``[B, kh * kw]``, ``[B, C_in]``, ``[B, C_out]``.

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``.
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


def _attention_reference(layer: DynamicConv2d, x: Tensor) -> Tensor:
    """:func:`batch_folded_conv2d` of the layer's own attentions."""
    layer.check_input(x)
    return layer.convolve(batch_folded_conv2d, x, layer.compute_attention(x))


def register_reference(
        cls: type) -> Callable[[ReferenceForward], ReferenceForward]:
    """Decorator: the released formulation of family ``cls`` (and of its
    subclasses that register none of their own)."""

    def register(fn: ReferenceForward) -> ReferenceForward:
        _REFERENCES[cls] = fn
        return fn

    return register


@register_reference(KWConv2d)
def _kernel_warehouse_reference(layer: KWConv2d, x: Tensor) -> Tensor:
    """The released KernelWarehouse forward: the same assembled kernels,
    one convolution with the batch folded into the groups."""
    layer.check_input(x)
    batch = x.size(0)
    kernels = layer.assemble_kernels(layer.kw_attention(x))
    out = F.conv2d(
        x.reshape(1, -1, *x.shape[2:]), kernels.flatten(0, 1), None,
        layer.stride, layer.padding, layer.dilation, layer.groups * batch)
    out = out.view(batch, layer.out_channels, *out.shape[2:])
    if layer.bias is not None:
        out = out + layer.bias.view(1, -1, 1, 1)
    return out


def fdconv_release_kernels(layer: FDConv2d, kernel_att: Tensor) -> Tensor:
    """The release's per-sample kernels of FDConv: a zero-filled spectrum
    ``[B, C_out k, C_in k // 2 + 1, 2]`` per sample, every copy's
    coordinates scattered into it group by group, each times ``alpha`` and
    its group's kernel attention, then ``irfft2`` and the layout undone:
    ``[B, 1, C_out, C_in, kh, kw]`` (the release's extra axis kept).

    Args:
        kernel_att (Tensor): ``[B, P * K]`` (ones for one group).
    """
    cout, cin = layer.out_channels, layer.in_channels
    kh, kw = layer.kernel_size
    rows, cols = cout * kh, cin * kw
    half = cols // 2 + 1
    batch = kernel_att.size(0)
    dtype = torch.promote_types(kernel_att.dtype, torch.float32)
    weight = layer.dft_weight.to(dtype)
    # coordinates sorted by group, as the release's per-group index lists
    order = torch.argsort(layer.group_index.to(weight.device), stable=True)
    group = layer.group_index.to(weight.device)[order]
    row, col = order // half, order % half
    att = kernel_att.to(dtype).view(batch, layer.param_ratio, -1)
    spectra = weight.new_zeros(batch, rows, half, 2)
    for i in range(layer.param_ratio):
        values = weight[i][row, col] * layer.alpha  # [n, 2]
        scaled = values[None] * att[:, i, group, None]  # [B, n, 2]
        spectra[:, row, col] += scaled
    matrix = torch.fft.irfft2(
        torch.view_as_complex(spectra), s=(rows, cols), dim=(1, 2))
    return matrix.reshape(batch, 1, cout, kh, cin,
                          kw).permute(0, 1, 2, 4, 3, 5)


@register_reference(FDConv2d)
def _fdconv_reference(layer: FDConv2d, x: Tensor) -> Tensor:
    """The released FDConv forward, re-expressed: per-sample kernels from
    :func:`fdconv_release_kernels` (``O(B C_out C_in k^2)`` memory, every
    attention multiplied into a stacked ``[B, 1, C_out, C_in, k, k]``
    kernel, or the channel attention into the input and the filter
    attention into the output where the kernel is the larger), the FBM on
    the input, one convolution with the batch folded into the groups. The
    attention modules (``KSM_Global``, ``KSM_Local``, ``FBM``) are the
    layer's own."""
    layer.check_input(x)
    if layer.is_dense:
        return F.conv2d(x, layer.weight, layer.bias, layer.stride,
                        layer.padding, layer.dilation, layer.groups)
    batch, cin, height, width = x.shape
    cout = layer.out_channels
    kh, kw = layer.kernel_size
    pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)
    att = layer.KSM_Global(pooled)
    kernel_att = att.kernel
    if kernel_att is None:
        kernel_att = pooled.new_ones(batch, layer.param_ratio)
    kernels = fdconv_release_kernels(layer, kernel_att)
    local = layer.KSM_Local(pooled).unsqueeze(1) \
        if layer.use_ksm_local else 1.0
    spatial = 1.0 if att.spatial is None else att.spatial.view(
        batch, 1, 1, 1, kh, kw)
    channel = 1.0 if att.channel is None else att.channel.view(
        batch, 1, 1, cin, 1, 1)
    filt = 1.0 if att.filter is None else att.filter.view(
        batch, 1, cout, 1, 1, 1)
    if hasattr(layer, 'FBM'):
        x = layer.FBM(x)
    in_kernel = cout * cin * kh * kw < (cin + cout) * height * width
    if in_kernel:
        weight = (spatial * channel * filt * kernels * local).sum(dim=1)
    else:
        weight = (spatial * kernels * local).sum(dim=1)
        if att.channel is not None:
            x = x * att.channel.view(batch, cin, 1, 1)
    weight = weight.to(x.dtype).reshape(-1, cin // layer.groups, kh, kw)
    out = F.conv2d(
        x.reshape(1, -1, height, width), weight, None, layer.stride,
        layer.padding, layer.dilation, layer.groups * batch)
    out = out.view(batch, cout, out.size(-2), out.size(-1))
    if not in_kernel and att.filter is not None:
        out = out * att.filter.view(batch, cout, 1, 1)
    if layer.bias is not None:
        out = out + layer.bias.view(1, -1, 1, 1)
    return out


def reference_forward(layer: DynamicConv2d) -> Optional[ReferenceForward]:
    """The released formulation of ``layer``'s family, or ``None``.

    A family registered with :func:`register_reference` (the closest class
    in its MRO wins) uses that; a family that keeps the base class's
    ``forward`` (``dynamic_conv2d`` of :meth:`compute_attention`) uses
    :func:`batch_folded_conv2d`; any other family has no reference.
    """
    for cls in type(layer).__mro__:
        if cls in _REFERENCES:
            return _REFERENCES[cls]
    if type(layer).forward is DynamicConv2d.forward:
        return _attention_reference
    return None


def has_reference(module: nn.Module) -> bool:
    """Whether every dynamic conv inside ``module`` has a reference."""
    return all(
        reference_forward(m) is not None for m in module.modules()
        if isinstance(m, DynamicConv2d))


@contextmanager
def released_formulation(module: nn.Module) -> Iterator[None]:
    """Run the dynamic convs inside ``module`` with their released
    formulation while the context is open.

    Swaps the instance ``forward`` of every dynamic conv (the class and
    other modules are untouched) and restores it on exit (an instance
    ``forward`` set before, e.g. by an enclosing context, comes back).

    Raises:
        ValueError: A dynamic conv whose family has no reference.
    """
    swapped: List[Tuple[DynamicConv2d, object]] = []
    try:
        for m in module.modules():
            if not isinstance(m, DynamicConv2d):
                continue
            ref = reference_forward(m)
            if ref is None:
                raise ValueError(
                    f'{type(m).__name__} has no released formulation to '
                    'compare with; register one with dynconv_mmdet.analysis.'
                    'reference.register_reference')
            swapped.append((m, m.__dict__.get('forward', _UNSET)))
            m.forward = ref.__get__(m)
        yield
    finally:
        for m, previous in reversed(swapped):
            if previous is _UNSET:
                del m.forward
            else:
                m.forward = previous
