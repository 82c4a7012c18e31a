"""What the complexity tool asks of a dynamic conv: its attention modules,
their FLOPs and the FLOPs of one forward pass (the defaults of
:class:`~.base.DynamicConv2d`, for a family whose forward is
:func:`~.functional.dynamic_conv2d`)."""
from typing import Dict, List, Sequence, Tuple

import torch.nn as nn

from .functional import conv_output_size, fold_channel_attention


class FlopsMixin:
    """:meth:`attention_modules`, :meth:`attention_flops`, :meth:`flops` and
    :meth:`output_size` of :class:`~.base.DynamicConv2d`."""

    def attention_modules(self) -> List[nn.Module]:
        """The ``nn.Linear`` / ``nn.Conv2d`` modules that compute the
        attention from the pooled input (default: every such submodule)."""
        return [
            m for m in self.modules()
            if m is not self and isinstance(m, (nn.Linear, nn.Conv2d))
        ]

    def attention_flops(self) -> int:
        """Multiply-adds of the attention per sample (pooling excluded).

        Default: every module of :meth:`attention_modules` applied once to
        pooled features (``in * out`` for a Linear, ``in / groups * out *
        kh * kw`` for a conv on a 1x1 map).
        """
        total = 0
        for m in self.attention_modules():
            if isinstance(m, nn.Linear):
                total += m.in_features * m.out_features
            else:
                total += (
                    m.in_channels // m.groups * m.out_channels *
                    m.kernel_size[0] * m.kernel_size[1])
        return total

    def flops(self, input_shape: Sequence[int]) -> Dict[str, int]:
        """FLOPs (multiply-adds) of one forward pass for ``[B, C_in, H, W]``.

        What :func:`~.functional.dynamic_conv2d` computes: global average
        pooling (``C_in * H * W`` adds), the attention
        (:meth:`attention_flops`), the kernel aggregation (``K * N`` for the
        mixture with ``N`` = ``kernel_numel``, nothing when ``K = 1``;
        ``C_in * kh * kw`` to combine input-channel and spatial
        attention; ``N`` per attention multiplied into the kernel, or one
        multiply per element of the feature map it scales instead), and the
        convolution (``N * H_out * W_out`` per sample). With attentions one
        per kernel (``per_kernel_attentions()``), per sample and kernel:
        its output side (``a_kernel * a_out``, ``C_out``), its input side
        (``a_in * a_spatial``, ``C_in * kh * kw``), ``N`` per side
        multiplied into the kernel, and ``N`` to add it to the sum. Without
        any attention: the convolution only.

        Returns:
            dict: ``pool``, ``attention``, ``aggregation``, ``conv``.
        """
        batch, cin, height, width = (int(v) for v in input_shape)
        cout, groups = self.out_channels, self.groups
        kh, kw = self.kernel_size
        h_out, w_out = self.output_size(height, width)
        numel = self.kernel_numel
        conv = batch * numel * h_out * w_out
        produced = set(self.produced_attentions())
        if not produced:
            return dict(pool=0, attention=0, aggregation=0, conv=conv)
        num_kernels = self.num_kernels
        has_kernel = 'kernel' in produced
        has_spatial = 'spatial' in produced
        has_in, has_out = 'in_channel' in produced, 'out_channel' in produced
        if self.per_kernel_attentions():
            # per sample and kernel: combine each side, scale, accumulate
            in_side, out_side = has_in or has_spatial, has_out or has_kernel
            per_kernel = numel * (in_side + out_side)
            if has_in and has_spatial:
                per_kernel += cin * kh * kw
            if has_out and has_kernel:
                per_kernel += cout
            agg = batch * (
                num_kernels * per_kernel + (num_kernels - 1) * numel)
        else:
            fold_in, fold_out = fold_channel_attention(
                (batch, cin, height, width),
                (num_kernels, cout, cin // groups, kh, kw), self.stride,
                self.padding, self.dilation, groups, has_kernel or has_spatial,
                has_in, has_out)
            agg = num_kernels * numel if has_kernel else 0
            if fold_in and has_spatial:
                agg += cin * kh * kw  # in_attn x spatial_attn
            agg += numel * ((fold_in or has_spatial) + fold_out)
            agg *= batch
            if has_in and not fold_in:
                agg += batch * cin * height * width
            if has_out and not fold_out:
                agg += batch * cout * h_out * w_out
        return dict(
            pool=batch * cin * height * width,
            attention=batch * self.attention_flops(),
            aggregation=agg,
            conv=conv)

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        """``(H_out, W_out)`` for an input of ``height`` x ``width``."""
        geometry = zip((height, width), self.kernel_size, self.stride,
                       self.padding, self.dilation)
        return tuple(
            conv_output_size(size, k, s, p, d)
            for size, k, s, p, d in geometry)
