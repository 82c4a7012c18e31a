# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""mmcv's DCN and DCNv2 in standard ONNX operators, for ONNX Runtime.

Deformable convolution (Dai et al., ICCV 2017) and its modulated form
(DCNv2, Zhu et al., CVPR 2019) sample the input bilinearly at learned
offsets. mmdeploy exports them as custom ops: ONNX Runtime has no DCN (v1)
op at all, and mmdeploy 1.3.1's op library (built for onnxruntime 1.15)
gives wrong DCNv2 outputs in the onnxruntime of our stack.
:func:`deform_conv2d_gather` computes the same numbers as mmcv's kernels
with gathers, products and one matrix product, all standard ONNX operators
from opset 11, with the batch, height and width read from the tensors at
run time; :func:`register_rewriters` makes mmdeploy export mmcv's
``DeformConv2dPack`` and ``ModulatedDeformConv2dPack`` through it for the
``onnxruntime`` backend.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

_REGISTERED = []


def _running_index(like: Tensor, dim: int) -> Tensor:
    """``0, 1, ..., n - 1`` along ``dim`` of ``like`` (``n`` read at run
    time: a cumulative sum, so an exported graph keeps ``n`` free)."""
    return torch.ones_like(like).cumsum(dim) - 1


def _bilinear_gather(x: Tensor, py: Tensor, px: Tensor) -> Tensor:
    """``x`` ``[B, G, C, H, W]`` sampled bilinearly at ``(py, px)``
    ``[B, G, P]``, zero outside the map as mmcv's kernels sample:
    ``[B, G, C, P]``."""
    b, g, c = x.shape[:3]
    flat = x.reshape(b, g, c, -1)
    last_row = _running_index(x[0, 0, 0, :, 0], 0)[-1]
    width = _running_index(x[0, 0, 0, 0, :], 0)[-1] + 1
    y0 = torch.floor(py)
    x0 = torch.floor(px)
    ly = py - y0
    lx = px - x0
    out = None
    for dy, wy in ((0, 1 - ly), (1, ly)):
        for dx, wx in ((0, 1 - lx), (1, lx)):
            yy = y0 + dy
            xx = x0 + dx
            inside = (yy >= 0) & (yy <= last_row) & (xx >= 0) & (xx < width)
            yy = torch.minimum(torch.clamp(yy, min=0), last_row)
            xx = torch.minimum(torch.clamp(xx, min=0), width - 1)
            index = (yy * width + xx).long()
            taken = torch.gather(flat, 3,
                                 index.unsqueeze(2).expand(-1, -1, c, -1))
            term = taken * (wy * wx * inside.to(wy.dtype)).unsqueeze(2)
            out = term if out is None else out + term
    return out


def deform_conv2d_gather(x: Tensor,
                         offset: Tensor,
                         weight: Tensor,
                         bias: Optional[Tensor],
                         stride: Tuple[int, int],
                         padding: Tuple[int, int],
                         dilation: Tuple[int, int],
                         groups: int,
                         deform_groups: int,
                         mask: Optional[Tensor] = None) -> Tensor:
    """Deformable convolution as mmcv computes it (``deform_conv2d``, or
    ``modulated_deform_conv2d`` with ``mask``).

    Args:
        x (Tensor): ``[B, C_in, H, W]``.
        offset (Tensor): ``[B, 2 * G * kh * kw, H_out, W_out]``, mmcv's
            layout: per deform group ``G`` and kernel tap, ``(dy, dx)``.
        weight (Tensor): ``[C_out, C_in / groups, kh, kw]``.
        bias (Tensor, optional): ``[C_out]``.
        stride, padding, dilation (tuple[int, int]): As ``nn.Conv2d``.
        groups (int): Convolution groups.
        deform_groups (int): ``G``: input channel groups sharing offsets.
        mask (Tensor, optional): DCNv2's modulation
            ``[B, G * kh * kw, H_out, W_out]`` (already through its
            sigmoid).

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``.
    """
    c_out, c_group, kh, kw = weight.shape
    c_in = c_group * groups
    taps = kh * kw
    b = x.shape[0]
    ho, wo = offset.shape[-2:]
    shifts = offset.reshape(b, deform_groups, taps, 2, ho, wo)
    rows = _running_index(offset[0, 0, :, 0], 0) * stride[0] - padding[0]
    cols = _running_index(offset[0, 0, 0, :], 0) * stride[1] - padding[1]
    tap_y = torch.arange(
        kh, dtype=x.dtype, device=x.device).repeat_interleave(kw) * dilation[0]
    tap_x = torch.arange(kw, dtype=x.dtype, device=x.device).repeat(kh) * \
        dilation[1]
    py = (
        rows.view(1, 1, 1, -1, 1) + tap_y.view(1, 1, taps, 1, 1) +
        shifts[:, :, :, 0])
    px = (
        cols.view(1, 1, 1, 1, -1) + tap_x.view(1, 1, taps, 1, 1) +
        shifts[:, :, :, 1])
    grouped = x.reshape(b, deform_groups, c_in // deform_groups, *x.shape[2:])
    sampled = _bilinear_gather(grouped, py.reshape(b, deform_groups, -1),
                               px.reshape(b, deform_groups, -1))
    if mask is not None:
        sampled = sampled * mask.reshape(b, deform_groups, 1, -1)
    # [B, C_in * taps, H_out * W_out], channel-major as the weight is laid
    columns = sampled.reshape(b, groups, c_group * taps, -1)
    out = torch.matmul(weight.reshape(1, groups, c_out // groups, -1), columns)
    out = out.reshape(b, c_out, ho, wo)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def register_rewriters() -> None:
    """Register, once, mmdeploy rewriters of mmcv's ``DeformConv2dPack`` and
    ``ModulatedDeformConv2dPack`` ``forward`` for the ``onnxruntime``
    backend (they run :func:`deform_conv2d_gather`)."""
    if _REGISTERED:
        return
    from mmdeploy.core import FUNCTION_REWRITER

    @FUNCTION_REWRITER.register_rewriter(
        'mmcv.ops.deform_conv.DeformConv2dPack.forward', backend='onnxruntime')
    def deform_conv2d_pack__forward__onnxruntime(self, x: Tensor) -> Tensor:
        return deform_conv2d_gather(x, self.conv_offset(x), self.weight, None,
                                    self.stride, self.padding, self.dilation,
                                    self.groups, self.deform_groups)

    @FUNCTION_REWRITER.register_rewriter(
        'mmcv.ops.modulated_deform_conv.ModulatedDeformConv2dPack.forward',
        backend='onnxruntime')
    def modulated_deform_conv2d_pack__forward__onnxruntime(
            self, x: Tensor) -> Tensor:
        out = self.conv_offset(x)
        o1, o2, mask = torch.chunk(out, 3, dim=1)
        return deform_conv2d_gather(x, torch.cat(
            (o1, o2), dim=1), self.weight, self.bias, self.stride,
                                    self.padding, self.dilation, self.groups,
                                    self.deform_groups, torch.sigmoid(mask))

    _REGISTERED.append(True)
