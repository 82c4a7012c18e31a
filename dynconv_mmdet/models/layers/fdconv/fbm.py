"""FDConv's frequency band modulation (FBM) of the input.

Chen et al., "Frequency Dynamic Convolution for Dense Image Prediction",
CVPR 2025; the release's ``FrequencyBandModulation`` (github
Linwei-Chen/FDConv), with its parameter names.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from .frequency import autocast_off, band_masks, float32_for_fft, resize_masks

#: Activations of the band weights (the release's ``act``).
BAND_ACTIVATIONS = ('sigmoid', 'tanh', 'softmax')


class FrequencyBandModulation(nn.Module):
    """Split the input into frequency bands and reweight each band per
    pixel.

    ``X = rfft2(x, norm='ortho')``; for each ``k`` of ``k_list`` (a low
    pass ``max(|f_y|, |f_x|) < 0.5 / k``, precomputed at ``max_size`` and
    resized nearest to the input's grid, as released), ``low_k =
    irfft2(X * mask_k)`` and ``high_k = low_{k-1} - low_k`` (``low_0 = x``);
    the output is ``sum_k act(conv_k(x)) * high_k + low_last`` (the lowest
    band also weighted with ``lowfreq_att``). ``conv_k``
    (``freq_weight_conv_list``) maps ``C_in`` to ``spatial_group`` maps
    (``spatial_kernel`` square, grouped), ``act`` is ``2 * sigmoid``,
    ``1 + tanh`` or ``softmax * n``. With ``init='zero'`` their weights start
    normal with std 1e-6 and zero bias (so the module starts as the
    identity).

    The transforms run in float32 (float64 stays), with autocast off.

    Shapes: input ``[B, C_in, H, W]`` -> output ``[B, C_in, H, W]`` (at
    least float32).
    """

    def __init__(self,
                 in_channels: int,
                 k_list: Sequence[int] = (2, ),
                 lowfreq_att: bool = False,
                 fs_feat: str = 'feat',
                 act: str = 'sigmoid',
                 spatial: str = 'conv',
                 spatial_group: int = 1,
                 spatial_kernel: int = 3,
                 init: str = 'zero',
                 max_size: Tuple[int, int] = (64, 64),
                 **unused) -> None:
        super().__init__()
        if spatial != 'conv':
            raise ValueError("FDConv2d: fbm_cfg spatial must be 'conv' (the "
                             f'only one released), got {spatial!r}')
        if act not in BAND_ACTIVATIONS:
            raise ValueError(f'FDConv2d: fbm_cfg act must be one of '
                             f'{BAND_ACTIVATIONS}, got {act!r}')
        if spatial_group > 64:
            spatial_group = in_channels
        self.k_list = tuple(k_list)
        self.lowfreq_att = lowfreq_att
        self.in_channels = in_channels
        self.act = act
        self.spatial_group = spatial_group
        self.init = init
        count = len(self.k_list) + int(lowfreq_att)
        self.freq_weight_conv_list = nn.ModuleList(
            nn.Conv2d(
                in_channels,
                spatial_group,
                spatial_kernel,
                padding=spatial_kernel // 2,
                groups=spatial_group) for _ in range(count))
        self.register_buffer(
            'cached_masks',
            band_masks(max_size, self.k_list),
            persistent=False)
        self.init_weights()

    def init_weights(self) -> None:
        """With ``init='zero'``: weights normal (std 1e-6), zero bias;
        otherwise ``nn.Conv2d``'s own initialisation."""
        for conv in self.freq_weight_conv_list:
            if self.init == 'zero':
                nn.init.normal_(conv.weight, std=1e-6)
                nn.init.zeros_(conv.bias)
            else:
                conv.reset_parameters()

    def _weight(self, index: int, x: Tensor) -> Tensor:
        logits = self.freq_weight_conv_list[index](x)
        if self.act == 'sigmoid':
            return logits.sigmoid() * 2
        if self.act == 'tanh':
            return 1 + logits.tanh()
        return logits.softmax(dim=1) * logits.size(1)

    def _weighted(self, weight: Tensor, band: Tensor) -> Tensor:
        b, _, h, w = band.shape
        groups = self.spatial_group
        return (weight.reshape(b, groups, -1, h, w) *
                band.reshape(b, groups, -1, h, w)).reshape(b, -1, h, w)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C_in, H, W]`` -> ``[B, C_in, H, W]``."""
        height, width = x.shape[-2:]
        with autocast_off(x.device):
            full = float32_for_fft(x)
            spectrum = torch.fft.rfft2(full, norm='ortho')
            masks = resize_masks(self.cached_masks, height, width, full)
            lows = [
                torch.fft.irfft2(
                    spectrum * masks[i], s=(height, width), norm='ortho')
                for i in range(len(self.k_list))
            ]
        return self.modulate(x, full, lows)

    def modulate(self, x: Tensor, full: Tensor, lows: List[Tensor]) -> Tensor:
        """The output from the input ``x``, itself in the transforms' dtype
        (``full``) and its low-pass bands ``lows`` (one per ``k_list``
        entry), however they were computed."""
        out = None
        previous = full
        for i, low in enumerate(lows):
            term = self._weighted(self._weight(i, x), previous - low)
            out = term if out is None else out + term
            previous = low
        if self.lowfreq_att:
            previous = self._weighted(self._weight(len(lows), x), previous)
        return previous if out is None else out + previous
