"""Reference computations and isolation helpers for tests."""
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from torch import Tensor


def rel_err(a: Tensor, b: Tensor) -> float:
    """``max |a - b| / max |b|`` (the denominator at least 1e-12)."""
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def naive_dynamic_conv(x: Tensor, layer) -> Tensor:
    """Independent reference of a kernel-mixing dynamic conv.

    Loops over samples and kernels: ``y_b = a_out_b * conv(x_b * a_in_b,
    a_spatial_b * sum_i a_kernel_bi W_i) + bias`` with the attentions of
    ``layer.compute_attention(x)`` and the kernels ``layer.weight``
    (``[K, C_out, C_in / groups, kh, kw]``).

    Args:
        x (Tensor): Input ``[B, C_in, H, W]``.
        layer (DynamicConv2d): A layer that keeps its kernels in ``weight``.

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``.
    """
    attn = layer.compute_attention(x)
    outs = []
    for b in range(x.size(0)):
        k = layer.weight.size(0)
        mix = [1.0] * k if attn.kernel is None else attn.kernel[b]
        w = sum(mix[i] * layer.weight[i] for i in range(k))
        kh, kw = layer.kernel_size
        if attn.spatial is not None:
            w = w * attn.spatial[b].view(1, 1, kh, kw)
        xb = x[b:b + 1]
        if attn.in_channel is not None:
            xb = xb * attn.in_channel[b].view(1, -1, 1, 1)
        y = F.conv2d(xb, w, None, layer.stride, layer.padding, layer.dilation,
                     layer.groups)
        if attn.out_channel is not None:
            y = y * attn.out_channel[b].view(1, -1, 1, 1)
        if layer.bias is not None:
            y = y + layer.bias.view(1, -1, 1, 1)
        outs.append(y)
    return torch.cat(outs)


@contextmanager
def isolated_default_scope() -> Iterator[None]:
    """Undo, on exit, every mmengine default scope set inside the context.

    An mmengine ``Runner`` (or anything calling
    ``DefaultScope.get_instance``) makes its scope the current one for the
    rest of the process; a test that builds one would change which registry
    the tests after it build from.
    """
    saved = DefaultScope._instance_dict.copy()
    try:
        yield
    finally:
        DefaultScope._instance_dict.clear()
        DefaultScope._instance_dict.update(saved)
