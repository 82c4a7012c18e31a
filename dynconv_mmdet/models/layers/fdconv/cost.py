"""What FDConv costs: the complexity tool's questions to :class:`~.layer.
FDConv2d` (its attention modules, their FLOPs and those of one forward
pass, the transforms included).

Chen et al., "Frequency Dynamic Convolution for Dense Image Prediction",
CVPR 2025 (github Linwei-Chen/FDConv).
"""
from typing import Dict, List, Sequence

import torch.nn as nn

from .frequency import fft_macs, spectrum_shape


class FDConvCostMixin:
    """:meth:`attention_modules`, :meth:`attention_flops` and :meth:`flops`
    of :class:`~.layer.FDConv2d`."""

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

    def flops(self, input_shape: Sequence[int]) -> Dict[str, int]:
        """Multiply-adds of one forward pass for ``[B, C_in, H, W]``.

        ``pool``: the average; ``attention``: :meth:`attention_flops` per
        sample and FBM's band-weight convs; ``aggregation``: the spectrum
        scaled per group (a complex value times a real one, ``P`` copies),
        its inverse transform (:func:`~.frequency.fft_macs`), the attentions
        multiplied into the kernel (or channel attentions into the maps, as
        :meth:`forward` places them), and FBM's transforms, masks and band
        products; ``conv``: the convolution. A dense conv: ``conv`` only.
        """
        batch, cin, height, width = (int(v) for v in input_shape)
        h_out, w_out = self.output_size(height, width)
        numel = self.kernel_numel
        conv = batch * numel * h_out * w_out
        if self.is_dense:
            return dict(pool=0, attention=0, aggregation=0, conv=conv)
        rows, cols, half = spectrum_shape(self.out_channels, cin,
                                          self.kernel_size)
        samples = batch if self.KSM_Global.kernel_fc is not None else 1
        agg = samples * (2 * self.param_ratio * rows * half +
                         fft_macs(rows, cols))
        in_kernel = numel < (cin + self.out_channels) * height * width
        produced = set(self.produced_attentions())
        per_kernel = int(self.use_ksm_local) + int('spatial' in produced)
        if in_kernel:
            per_kernel += int(bool(produced & {'in_channel', 'out_channel'}))
        else:
            agg += batch * (
                cin * height * width * int('in_channel' in produced) +
                self.out_channels * h_out * w_out *
                int('out_channel' in produced))
        agg += batch * per_kernel * numel
        attention = batch * self.attention_flops()
        if hasattr(self, 'FBM'):
            convs = self.FBM.conv_flops(batch, height, width)
            attention += convs
            agg += self.FBM.flops(batch, height, width) - convs
        return dict(
            pool=batch * cin * height * width,
            attention=attention,
            aggregation=agg,
            conv=conv)
