"""FDConv in a graph traced for export: its Fourier transforms as real
matrix products.

ONNX has a ``DFT`` operator only from opset 17, and the TorchScript
exporter has no form of a complex tensor (the release's ``view_as_complex``
fails). :meth:`FDConvExportMixin.forward_export` therefore computes the
transforms of :class:`~.layer.FDConv2d` as products with real DFT matrices
(cosines and sines), exact to rounding, at every opset:

* the kernel assembly (``irfft2`` of the attention-scaled spectrum
  ``[C_out * kh, C_in * kw // 2 + 1]``): a complex inverse DFT along the
  rows and a real (``c2r``) one along the columns, with constant matrices
  built from the module's geometry (:func:`kernel_dft_matrices`);
* the frequency band modulation (``rfft2`` of the input, the band masks
  resized to its grid, one ``irfft2`` per band): matrices built in the
  graph from the runtime height and width (``arange`` on the traced shape,
  ``cos`` / ``sin``, :func:`runtime_dft`), so an export with free height
  and width stays right for every size; the masks are resized with the
  source indices PyTorch's ``nearest`` computes (float32 ``floor(i * in /
  out)``), gathered in the graph.

A real ``c2r`` transform ignores the imaginary parts of its zero (and, for
an even length, Nyquist) column; ``w_v cos`` / ``w_v sin`` with ``w_v`` 1
there and 2 elsewhere reproduce that, for spectra that are not Hermitian
too (the attention-scaled spectrum is not).

Cost: a DFT by matrix product takes ``O(n^2)`` per axis where the FFT
takes ``O(n log n)``: ``~4 R^2 R' + 2 R R' N`` multiply-adds per sample for
a kernel of layout ``R x N`` (``R' = N // 2 + 1``), and ``~(4 H + 2 W) H
W'`` per channel and band for an ``H x W`` input; the kernel's matrices are
``2 R^2 + 2 R' N`` constants in the graph.
"""
import functools
import math
import warnings
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..functional import EXPORT_FORMS, conv2d_per_sample
from .frequency import float32_for_fft, scaled_spectrum_parts
from .ksm_global import GlobalAttention

Size = Union[int, Tensor]


@functools.lru_cache(maxsize=64)
def _kernel_dft(rows: int, cols: int) -> Tuple[Tensor, Tensor]:
    # numpy, not torch: built while tracing, torch ops would enter the graph
    r = np.arange(rows)
    angle = 2 * np.pi * (np.outer(r, r) % rows) / rows
    rows_dft = np.stack([np.cos(angle), np.sin(angle)])
    half = cols // 2 + 1
    v, c = np.arange(half), np.arange(cols)
    angle = 2 * np.pi * (np.outer(v, c) % cols) / cols
    weight = np.where((v == 0) | (2 * v == cols), 1.0, 2.0)[:, None]
    scale = weight / (rows * cols)
    cols_dft = np.concatenate([np.cos(angle) * scale, -np.sin(angle) * scale])
    with warnings.catch_warnings():  # constants on purpose
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        return (torch.from_numpy(rows_dft.astype(np.float32)),
                torch.from_numpy(cols_dft.astype(np.float32)))


def kernel_dft_matrices(rows: int, cols: int,
                        like: Tensor) -> Tuple[Tensor, Tensor]:
    """The constant matrices of ``irfft2(X, s=(rows, cols))``.

    Returns:
        tuple: ``E`` ``[2, rows, rows]`` (``cos``, ``sin`` of ``2 pi u r /
        rows``) and ``G`` ``[2 * cols', cols]`` (``w_v cos(2 pi v c / cols)
        / (rows cols)`` over ``-w_v sin(...) / (rows cols)``), ``cols' =
        cols // 2 + 1``, with the dtype and device of ``like``.
    """
    rows_dft, cols_dft = _kernel_dft(rows, cols)
    return rows_dft.to(like), cols_dft.to(like)


def irfft2_real(real: Tensor, imag: Tensor, rows: int, cols: int) -> Tensor:
    """``irfft2(real + i imag, s=(rows, cols))`` over the last two axes as
    real matrix products (:func:`kernel_dft_matrices`; the sizes are
    numbers, from the module), ``[B, rows, cols // 2 + 1]`` -> ``[B, rows,
    cols]``.

    Every product has the constant on the right (batched on the left, one
    matrix product), the row transform on the transposed parts (the DFT
    matrix is symmetric)."""
    rows_dft, cols_dft = kernel_dft_matrices(rows, cols, real)
    half = cols // 2 + 1
    # [B, 2 * half, rows]: real over imaginary parts, transposed
    parts = torch.cat([real.transpose(1, 2), imag.transpose(1, 2)], 1)
    cos_part = torch.matmul(parts, rows_dft[0])
    sin_part = torch.matmul(parts, rows_dft[1])
    # the rows' inverse DFT, (C + iS)(Xr + iXi), transposed
    both = torch.cat([
        cos_part[:, :half] - sin_part[:, half:],
        sin_part[:, :half] + cos_part[:, half:]
    ], 1)
    return torch.matmul(both.transpose(1, 2), cols_dft)


def runtime_dft(count: Size, size: Size,
                like: Tensor) -> Tuple[Tensor, Tensor]:
    """``cos`` and ``sin`` of ``2 pi k n / size``, ``[count, size]``, built
    from sizes that may be traced (so they stay free in an exported graph);
    ``k n`` is reduced modulo ``size`` in integers first."""
    k = torch.arange(count, device=like.device)
    n = torch.arange(size, device=like.device)
    product = torch.remainder(k.unsqueeze(1) * n.unsqueeze(0), size)
    angle = product.to(like.dtype) * (2 * math.pi / size)
    return torch.cos(angle), torch.sin(angle)


def nearest_source_index(size_in: Size, size_out: Size,
                         like: Tensor) -> Tensor:
    """The source indices of ``F.interpolate(mode='nearest')`` from
    ``size_in`` to ``size_out``, computed as PyTorch does (float32
    ``min(floor(i * (in / out)), in - 1)``; an integer ``i * in // out``
    differs for some sizes)."""
    dst = torch.arange(size_out, device=like.device).to(torch.float32)
    zero = dst.new_zeros(())
    size_in = zero + size_in
    index = torch.floor(dst * (size_in / (zero + size_out)))
    return torch.min(index, size_in - 1).to(torch.long)


def fbm_low_bands(fbm, full: Tensor) -> List[Tensor]:
    """The low-pass bands of :class:`~.fbm.FrequencyBandModulation` (what
    its ``rfft2`` / mask / ``irfft2`` compute) as real matrix products with
    DFT matrices of the runtime height and width, ``[B, C, H, W]`` each.

    The height's transforms run on the transposed maps (``[B, C, W', H]``,
    the DFT matrix is symmetric), so that every product has its constant
    on the right."""
    height, width = full.shape[-2:]
    half = width // 2 + 1
    cos_h, sin_h = runtime_dft(height, height, full)
    cos_w, sin_w = runtime_dft(half, width, full)
    # rfft along the width (x e^{-i...}), then a complex DFT along the height
    a_real = torch.matmul(full, cos_w.t()).transpose(-1, -2)
    a_imag = torch.matmul(full, -sin_w.t()).transpose(-1, -2)
    x_real = torch.matmul(a_real, cos_h) + torch.matmul(a_imag, sin_h)
    x_imag = torch.matmul(a_imag, cos_h) - torch.matmul(a_real, sin_h)
    masks = fbm.cached_masks.to(full)
    rows = nearest_source_index(masks.size(-2), height, full)
    cols = nearest_source_index(masks.size(-1), half, full)
    masks = masks.index_select(-1, cols).index_select(-2, rows)
    masks = masks.transpose(-1, -2)  # [n, 1, W', H]
    # c2r along the width: w_v 1 at v = 0 and at the Nyquist of an even W
    v = torch.arange(half, device=full.device)
    weight = 2 - (v == 0).to(full.dtype) - (2 * v == width).to(full.dtype)
    scale = (weight / ((full.new_zeros(()) + height) * width)).unsqueeze(1)
    inverse = torch.cat([cos_w * scale, -sin_w * scale], 0)  # [2W', W]
    # every band at once: [n, B, C, W', H]
    y_real = x_real.unsqueeze(0) * masks.unsqueeze(1)
    y_imag = x_imag.unsqueeze(0) * masks.unsqueeze(1)
    z_real = torch.matmul(y_real, cos_h) - torch.matmul(y_imag, sin_h)
    z_imag = torch.matmul(y_real, sin_h) + torch.matmul(y_imag, cos_h)
    lows = torch.matmul(
        torch.cat([z_real, z_imag], -2).transpose(-1, -2), inverse)
    return [lows[i] for i in range(len(fbm.k_list))]


class FDConvExportMixin:
    """:meth:`forward_export` of :class:`~.layer.FDConv2d` (every export
    form) and the kernel modulation it shares with the eager forward."""

    #: Every form: ``'single'`` convolves once with the sample's kernel,
    #: ``'grouped'`` folds the fixed batch into the groups of one conv,
    #: ``'free'`` is right for every batch.
    export_forms = EXPORT_FORMS

    def modulate_kernels(self, kernels: Tensor, att: GlobalAttention,
                         pooled: Tensor, in_kernel: bool) -> Tensor:
        """``kernels`` ``[B or 1, C_out, C_in, kh, kw]`` times the spatial
        attention, with ``in_kernel`` the channel attentions, and the local
        attention of ``pooled`` ``[B, C_in]``."""
        small = att.spatial
        if small is not None:
            small = small.view(-1, 1, 1, *self.kernel_size)
        if in_kernel:
            for side in (att.channel.view(-1, 1, self.in_channels, 1, 1)
                         if att.channel is not None else None,
                         att.filter.view(-1, self.out_channels, 1, 1, 1)
                         if att.filter is not None else None):
                if side is not None:
                    small = side if small is None else small * side
        if small is not None:
            kernels = small * kernels
        if self.use_ksm_local:
            kernels = kernels * self.KSM_Local(pooled)
        return kernels

    def dft_kernels(self, kernel_att: Optional[Tensor]) -> Tensor:
        """:meth:`spectral_kernels` without complex tensors or
        ``torch.fft`` (real DFT products), ``[B or 1, C_out, C_in, kh,
        kw]``."""
        parts = scaled_spectrum_parts(self.dft_weight, self.alpha,
                                      self.group_index, kernel_att)
        kh, kw = self.kernel_size
        matrix = irfft2_real(
            parts.select(-1, 0), parts.select(-1, 1), self.out_channels * kh,
            self.in_channels * kw)
        return matrix.reshape(-1, self.out_channels, kh, self.in_channels,
                              kw).permute(0, 1, 3, 2, 4)

    def forward_export(self, x: Tensor, form: Optional[str]) -> Tensor:
        """:meth:`forward` in a graph traced for export, in ``form``
        (:data:`~..functional.EXPORT_FORMS`; ``None``: as eager): the same
        numbers (to rounding) with the transforms as real DFT products, the
        channel attentions always in the kernel, no in-place operation."""
        if self.is_dense:
            return F.conv2d(x, self.weight, self.bias, self.stride,
                            self.padding, self.dilation, self.groups)
        pooled = x.mean((2, 3))
        att = self.KSM_Global(pooled)
        kernels = self.dft_kernels(att.kernel)
        if hasattr(self, 'FBM'):
            full = float32_for_fft(x)
            x = self.FBM.modulate(x, full, fbm_low_bands(self.FBM, full))
        kernels = self.modulate_kernels(kernels, att, pooled, True)
        if all(a is None for a in att) and not self.use_ksm_local:
            out = F.conv2d(x, kernels[0].to(x.dtype), None, self.stride,
                           self.padding, self.dilation, self.groups)
        else:
            out = conv2d_per_sample(
                x,
                kernels.to(x.dtype),
                self.stride,
                self.padding,
                self.dilation,
                self.groups,
                kernel_size=self.kernel_size,
                export_form=form)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1).to(out.dtype)
        return out
