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
own reference with :func:`register_reference`.
"""
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models.layers import DynamicConv2d, KWConv2d

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
