"""The Fourier disjoint weight of FDConv: the frequency grid, its disjoint
groups, and the conversion between a dense kernel and its stored spectrum.

Chen et al., "Frequency Dynamic Convolution for Dense Image Prediction",
CVPR 2025 (github Linwei-Chen/FDConv, ``FDConv_detection/mmdet_custom/
FDConv.py`` and ``tools/convert_to_fdconv.py``).

A kernel ``W`` ``[C_out, C_in, kh, kw]`` is laid out as the 2-D matrix
``M = W.permute(0, 2, 1, 3)`` ``[C_out * kh, C_in * kw]``; FDConv stores
``rfft2(M) / (min(C_in, C_out) // 2)`` as real and imaginary parts,
``[P, C_out * kh, C_in * kw // 2 + 1, 2]`` (``P``: ``param_ratio`` copies).
The rFFT coordinates, sorted by their radial frequency, are cut into
``kernel_num`` contiguous groups, each scaled by its own kernel attention.
"""
import contextlib
import functools
import math
from typing import ContextManager, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def autocast_off(device: torch.device) -> ContextManager:
    """Autocast disabled on ``device`` (the FFTs run in float32); nothing on
    a device without autocast (``meta``, where the complexity tool builds
    models)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def spectrum_shape(out_channels: int, in_channels: int,
                   kernel_size: Tuple[int, int]) -> Tuple[int, int, int]:
    """``(rows, cols, rfft cols)`` of a kernel's 2-D layout:
    ``(C_out * kh, C_in * kw, C_in * kw // 2 + 1)``."""
    rows = out_channels * kernel_size[0]
    cols = in_channels * kernel_size[1]
    return rows, cols, cols // 2 + 1


def frequency_grid(rows: int,
                   cols: int,
                   rfft: bool = True) -> Tuple[Tensor, Tensor]:
    """The frequency coordinates of a ``rows x cols`` transform, sorted by
    their distance from the origin, as the release computes them (float32,
    on the CPU, ``torch.sort`` of the flattened distances).

    Returns:
        tuple: ``order`` ``[rows * cols']`` (flat indices of the
        ``rows x cols'`` grid, ``cols' = cols // 2 + 1`` with ``rfft``, by
        increasing radius) and ``freq`` ``[rows, cols', 2]`` (the
        ``(f_row, f_col)`` of each coordinate).
    """
    freq_h = torch.fft.fftfreq(rows, dtype=torch.float32, device='cpu')
    if rfft:
        freq_w = torch.fft.rfftfreq(cols, dtype=torch.float32, device='cpu')
    else:
        freq_w = torch.fft.fftfreq(cols, dtype=torch.float32, device='cpu')
    freq = torch.stack(torch.meshgrid(freq_h, freq_w, indexing='ij'), dim=-1)
    _, order = torch.sort(torch.norm(freq, dim=-1).view(-1))
    return order, freq


def frequency_groups(rows: int, cols: int, kernel_num: int) -> Tensor:
    """The group (``0 .. kernel_num - 1``) of every rFFT coordinate of a
    ``rows x cols`` matrix, flattened ``[rows * (cols // 2 + 1)]``, on the
    CPU (a new tensor each call; the sort behind it is computed once per
    shape, since a backbone repeats its conv shapes).

    The coordinates sorted by radius are cut into ``kernel_num`` contiguous
    groups. Where ``kernel_num`` divides their number ``n`` every group has
    ``n / kernel_num`` of them, exactly the release's grouping; otherwise
    (where the release fails with a reshape error) the first
    ``n % kernel_num`` groups take one coordinate more.

    Raises:
        ValueError: ``kernel_num`` greater than ``n`` (a group would be
            empty), naming the largest valid value.
    """
    return _frequency_groups(rows, cols, kernel_num).clone()


@functools.lru_cache(maxsize=256)
def _frequency_groups(rows: int, cols: int, kernel_num: int) -> Tensor:
    order, _ = frequency_grid(rows, cols)
    count = order.numel()
    if kernel_num > count:
        raise ValueError(
            f'kernel_num={kernel_num} exceeds the {count} frequencies of the '
            f'{rows} x {cols} kernel layout (C_out * kh x C_in * kw); the '
            f'nearest valid value is kernel_num={count}')
    size, larger = divmod(count, kernel_num)
    position = torch.arange(count, device='cpu')
    split = larger * (size + 1)
    group_of_position = torch.where(
        position < split, position // (size + 1),
        larger + (position - split) // max(size, 1))
    groups = torch.empty(count, dtype=torch.long, device='cpu')
    groups[order] = group_of_position
    return groups


def spectrum_scale(in_channels: int, out_channels: int) -> int:
    """The release's divisor of the stored spectrum, ``min(C_in, C_out)
    // 2``."""
    return min(in_channels, out_channels) // 2


def dense_to_spectrum(weight: Tensor, param_ratio: int = 1) -> Tensor:
    """The release's conversion of a dense kernel (``convert2dftweight``,
    ``tools/convert_to_fdconv.py``).

    Args:
        weight (Tensor): ``[C_out, C_in, kh, kw]``.
        param_ratio (int): Copies ``P``.

    Returns:
        Tensor: ``[P, C_out * kh, C_in * kw // 2 + 1, 2]``, real and
        imaginary parts of ``rfft2`` of the 2-D layout, divided by
        ``min(C_in, C_out) // 2``.
    """
    cout, cin, kh, kw = weight.shape
    matrix = weight.permute(0, 2, 1, 3).reshape(cout * kh, cin * kw)
    spectrum = torch.fft.rfft2(matrix, dim=(0, 1))
    stacked = torch.stack([spectrum.real, spectrum.imag], dim=-1)
    scaled = stacked / spectrum_scale(cin, cout)
    return scaled[None].repeat(param_ratio, 1, 1, 1)


def float32_for_fft(x: Tensor) -> Tensor:
    """``x`` in a dtype the FFTs take: float16 / bfloat16 become float32
    (float64 stays, for gradient checks)."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return x.float()
    return x


def scaled_spectrum(dft_weight: Tensor, alpha: float, group_index: Tensor,
                    kernel_att: Optional[Tensor]) -> Tensor:
    """The stored spectrum with every frequency group scaled by its kernel
    attention: ``alpha * sum_i a_i[group] * S_i`` (in float32 at least).

    Args:
        dft_weight (Tensor): ``[P, rows, cols', 2]`` (real, imaginary).
        alpha (float): The release's ``alpha``.
        group_index (Tensor): The group of each coordinate, ``[rows *
            cols']`` (:func:`frequency_groups`).
        kernel_att (Tensor, optional): ``[B, P * K]``; ``None``: one group
            (the attention is 1).

    Returns:
        Tensor: Complex ``[B, rows, cols']`` (``B = 1`` without
        ``kernel_att``).
    """
    return torch.view_as_complex(
        scaled_spectrum_parts(dft_weight, alpha, group_index, kernel_att))


def scaled_spectrum_parts(dft_weight: Tensor, alpha: float,
                          group_index: Tensor,
                          kernel_att: Optional[Tensor]) -> Tensor:
    """:func:`scaled_spectrum` as real and imaginary parts, ``[B, rows,
    cols', 2]`` (no complex dtype: what a graph traced for export takes)."""
    weight = float32_for_fft(dft_weight)
    copies, rows, half, _ = weight.shape
    flat = weight.view(copies, rows * half, 2) * alpha
    if kernel_att is None:
        spectrum = flat.sum(0, keepdim=True)
    else:
        att = float32_for_fft(kernel_att).view(kernel_att.size(0), copies, -1)
        att = att[:, :, group_index]  # [B, P, n]
        spectrum = flat[0] * att[:, 0, :, None]
        for i in range(1, copies):
            spectrum = spectrum + flat[i] * att[:, i, :, None]
    return spectrum.reshape(-1, rows, half, 2)


def spectrum_to_kernels(spectrum: Tensor, out_channels: int, in_channels: int,
                        kernel_size: Tuple[int, int]) -> Tensor:
    """Kernels from their complex spectra (the inverse of the layout).

    ``irfft2`` with the layout's size given (the release omits it, so an
    odd ``C_in * kw`` loses a column there and fails).

    Args:
        spectrum (Tensor): Complex ``[B, C_out * kh, C_in * kw // 2 + 1]``.

    Returns:
        Tensor: ``[B, C_out, C_in, kh, kw]``.
    """
    kh, kw = kernel_size
    rows, cols = out_channels * kh, in_channels * kw
    matrix = torch.fft.irfft2(spectrum, s=(rows, cols), dim=(1, 2))
    return matrix.view(-1, out_channels, kh, in_channels,
                       kw).permute(0, 1, 3, 2, 4)


def band_masks(max_size: Sequence[int], k_list: Sequence[int]) -> Tensor:
    """The low-pass masks of the frequency band modulation at
    ``max_size``, as the release precomputes them: coordinate ``(f_y, f_x)``
    of an rFFT grid is inside band ``k`` when ``max(|f_y|, |f_x|) < 0.5 / k``.

    Returns:
        Tensor: bool ``[len(k_list), 1, H_max, W_max // 2 + 1]``.
    """
    _, freq = frequency_grid(int(max_size[0]), int(max_size[1]))
    radius = freq.abs().max(dim=-1)[0]
    masks: List[Tensor] = [radius < 0.5 / k + 1e-8 for k in k_list]
    return torch.stack(masks, dim=0).unsqueeze(1)


def resize_masks(masks: Tensor, height: int, width: int,
                 like: Tensor) -> Tensor:
    """The precomputed masks resized (nearest) to the rFFT grid of a
    ``height x width`` map, ``[n, 1, height, width // 2 + 1]``, as the
    release does (not recomputed at that size), with the dtype and device
    of ``like`` (a model built on the meta device keeps them on the CPU)."""
    return F.interpolate(
        masks.to(like), size=(height, width // 2 + 1), mode='nearest')


def local_kernel_size(channels: int) -> int:
    """The ECA-style kernel size of the local branch:
    ``round(log2(C) / 2 + 0.5) // 2 * 2 + 1`` (5 for ``C = 64``)."""
    return round((math.log2(channels) / 2) + 0.5) // 2 * 2 + 1
