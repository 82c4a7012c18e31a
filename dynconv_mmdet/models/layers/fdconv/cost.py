"""What FDConv costs: the complexity tool's questions to :class:`~.layer.
FDConv2d` (its attention modules, their FLOPs and those of one forward
pass, the Fourier transforms included).

Chen et al., "Frequency Dynamic Convolution for Dense Image Prediction",
CVPR 2025 (github Linwei-Chen/FDConv).

Unit: as the rest of the complexity tool, **1 multiply-add = 1 FLOP**; an
elementwise multiply counts 1 per real multiply (a complex value times a
real one: 2); additions, activations and norms are not counted.

FFT cost model (:func:`fft_flops`): a real 2-D transform (``rfft2`` or
``irfft2``) of ``n = rows * cols`` real values costs ``5/2 n log2 n`` real
floating-point operations, the classic radix-2 count (``5 n log2 n`` for a
complex transform of ``n`` points, halved for real data; the convention of
FFTW's benchmarks). In the table's unit (one multiply-add is two real
operations) that is ``5/4 n log2 n``, with the real-valued ``log2`` (no
rounding up to a power of two: mixed-radix transforms handle the other
sizes at about that cost).
"""
import math
from typing import Dict, List, Sequence

import torch.nn as nn

from .frequency import spectrum_shape

#: The parts of :meth:`FDConvCostMixin.flops_breakdown`, by the entry of
#: :meth:`FDConvCostMixin.flops` they add to.
BREAKDOWN = {
    'pool': ('pool', ),
    'attention': ('ksm', 'fbm_convs'),
    'aggregation':
    ('spectrum_scaling', 'kernel_transform', 'kernel_attention',
     'map_attention', 'fbm_transforms', 'fbm_masks', 'fbm_products'),
    'conv': ('conv', ),
}


def fft_flops(rows: int, cols: int) -> int:
    """FLOPs (multiply-adds) counted for one real 2-D transform of ``rows x
    cols`` values, forward or inverse: ``round(5/4 n log2 n)``, ``n = rows *
    cols`` (see the module doc); 0 for one value."""
    n = rows * cols
    return int(round(1.25 * n * math.log2(n))) if n > 1 else 0


def fbm_flops(fbm: nn.Module, batch: int, height: int,
              width: int) -> Dict[str, int]:
    """FLOPs of FDConv's frequency band modulation on ``[B, C, H, W]``.

    Returns:
        dict: ``fbm_convs`` (the band-weight convs, ``C -> spatial_group``,
        at full resolution), ``fbm_transforms`` (one ``rfft2`` and one
        ``irfft2`` per band, of every channel), ``fbm_masks`` (the
        half-spectrum times each band's mask, complex x real) and
        ``fbm_products`` (each band weight times its band, and the lowest
        band's with ``lowfreq_att``).
    """
    channels = fbm.in_channels
    bands = len(fbm.k_list)
    pixels = height * width
    per_pixel = sum(c.in_channels // c.groups * c.out_channels *
                    c.kernel_size[0] * c.kernel_size[1]
                    for c in fbm.freq_weight_conv_list)
    maps = batch * channels
    return dict(
        fbm_convs=batch * per_pixel * pixels,
        fbm_transforms=maps * (1 + bands) * fft_flops(height, width),
        fbm_masks=maps * bands * height * (width // 2 + 1) * 2,
        fbm_products=maps * len(fbm.freq_weight_conv_list) * pixels)


class FDConvCostMixin:
    """:meth:`attention_modules`, :meth:`attention_flops`, :meth:`flops`
    and :meth:`flops_breakdown` of :class:`~.layer.FDConv2d`."""

    def attention_modules(self) -> List[nn.Module]:
        """The convs of ``KSM_Global`` and ``KSM_Local`` (on the pooled
        input) and of ``FBM`` (on the feature map)."""
        return [
            m for part in self.attention_parts() for m in part.modules()
            if isinstance(m, (nn.Conv1d, nn.Conv2d))
        ]

    def attention_flops(self) -> int:
        """Multiply-adds per sample on the pooled input: ``KSM_Global``
        (trunk and heads) and ``KSM_Local`` (its 1-D conv)."""
        if self.is_dense:
            return 0
        total = self.KSM_Global.flops()
        if self.use_ksm_local:
            total += self.KSM_Local.flops()
        return total

    def flops_breakdown(self, input_shape: Sequence[int]) -> Dict[str, int]:
        """FLOPs of one forward pass for ``[B, C_in, H, W]``, by what
        :meth:`forward` computes.

        ``pool``: the average (1 per input value); ``ksm``:
        :meth:`attention_flops` per sample; ``spectrum_scaling``: each copy
        of the stored half-spectrum times its group's kernel attention
        (complex x real, 2 per coordinate and copy); ``kernel_transform``:
        the ``irfft2`` of the ``(C_out k) x (C_in k)`` layout
        (:func:`fft_flops`); both per sample, once for the batch without a
        kernel head (``kernel_num=1``); ``kernel_attention``: the local
        attention and the global ones multiplied into the kernel (1 per
        kernel element each), ``map_attention``: the channel attentions on
        the feature maps instead where the kernel is the larger (the
        release's rule, as :meth:`forward`); the FBM's parts
        (:func:`fbm_flops`) on 3x3 convs; ``conv``: the convolution. A
        dense conv: ``conv`` only (the other entries 0).
        """
        batch, cin, height, width = (int(v) for v in input_shape)
        h_out, w_out = self.output_size(height, width)
        numel = self.kernel_numel
        counts = dict.fromkeys(
            (k for keys in BREAKDOWN.values() for k in keys), 0)
        counts['conv'] = batch * numel * h_out * w_out
        if self.is_dense:
            return counts
        rows, cols, half = spectrum_shape(self.out_channels, cin,
                                          self.kernel_size)
        kernels = batch if self.KSM_Global.kernel_fc is not None else 1
        counts['pool'] = batch * cin * height * width
        counts['ksm'] = batch * self.attention_flops()
        counts['spectrum_scaling'] = kernels * 2 * self.param_ratio * \
            rows * half
        counts['kernel_transform'] = kernels * fft_flops(rows, cols)
        produced = set(self.produced_attentions())
        per_kernel = int(self.use_ksm_local) + int('spatial' in produced)
        in_kernel = numel < (cin + self.out_channels) * height * width
        if in_kernel:
            per_kernel += int(bool(produced & {'in_channel', 'out_channel'}))
        else:
            counts['map_attention'] = batch * (
                cin * height * width * int('in_channel' in produced) +
                self.out_channels * h_out * w_out *
                int('out_channel' in produced))
        counts['kernel_attention'] = batch * per_kernel * numel
        if hasattr(self, 'FBM'):
            counts.update(fbm_flops(self.FBM, batch, height, width))
        return counts

    def flops(self, input_shape: Sequence[int]) -> Dict[str, int]:
        """Multiply-adds of one forward pass for ``[B, C_in, H, W]``:
        :meth:`flops_breakdown` summed into the complexity tool's entries
        (:data:`BREAKDOWN`): ``pool``; ``attention`` (KSM and the FBM's
        band-weight convs); ``aggregation`` (the kernel assembled from the
        spectrum, its inverse transform included, the attentions applied,
        and the FBM's transforms, masks and band products); ``conv``."""
        parts = self.flops_breakdown(input_shape)
        return {
            entry: sum(parts[k] for k in keys)
            for entry, keys in BREAKDOWN.items()
        }
