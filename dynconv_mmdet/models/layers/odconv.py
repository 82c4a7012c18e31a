"""Omni-dimensional dynamic convolution (ODConv).

Li, Zhou, Yao. "Omni-Dimensional Dynamic Convolution", ICLR 2022
(arXiv 2209.07947). With the default arguments, numerically the released
module (github OSVAI/ODConv), with the same parameter names so that official
checkpoints load unchanged. The paper's ablations (Tables 7, 11 and 12) are
switches: which of the four attentions are used, sigmoid or softmax for the
spatial attention, and attentions shared by the kernels or one set per kernel
(the "unshared" variant). The attention module is in
:mod:`.odconv_attention`.
"""
from typing import Optional, Sequence, Tuple

from mmengine.registry import MODELS
from torch import Tensor

from .attention import DynamicAttention
from .base import DynamicConv2d
from .checks import IntOrPair, check_positive_int
from .odconv_attention import (NO_HEADS, ODCONV_ATTENTIONS,
                               SPATIAL_ACTIVATIONS, ODConvAttention)
from .temperature import TemperatureMixin


@MODELS.register_module()
class ODConv2d(TemperatureMixin, DynamicConv2d):
    """Omni-dimensional dynamic convolution, a drop-in conv layer.

    ``y = a_f * conv(x * a_c, sum_i a_wi * a_s * W_i)`` with the attentions of
    :class:`ODConvAttention` computed from the layer's own input; with
    ``shared=False``, ``y = conv(x, sum_i a_wi * a_fi * a_ci * a_si * W_i)``
    (ODConv paper, eq. 3, one attention of each kind per kernel).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
            groups, bias: As :class:`DynamicConv2d`.
        kernel_num (int): Number of kernels ``K`` (1 or 4 in the paper; the
            layer's ``num_kernels``).
        reduction (float): Trunk width ratio. Default: 1/16.
        min_channels (int): Minimal trunk width. Default: 16.
        temperature (float): Divides all attention logits. Default: 1.
        norm_cfg (dict, optional): Trunk norm. Default: ``dict(type='BN')``.
        attentions (Sequence[str]): The attentions used, any of
            ``'in_channel'``, ``'out_channel'`` (the filter attention),
            ``'spatial'`` and ``'kernel'`` (needed when ``kernel_num > 1``).
            Default: all four (as released); a head that does not apply to
            the conv (filter: depthwise, spatial: 1x1, kernel: one kernel)
            is absent anyway.
        spatial_activation (str): ``'sigmoid'`` (as released) or
            ``'softmax'`` over the ``kh * kw`` positions.
        shared (bool): One channel, filter and spatial attention shared by
            the ``K`` kernels (as released), or one set per kernel
            (``False``, the paper's "unshared" variant: ``K`` times the
            parameters of those heads). Same as shared for one kernel.

    Shapes: input ``[B, C_in, H, W]``, weight
    ``[K, C_out, C_in / groups, kh, kw]``, output ``[B, C_out, H', W']``.
    """

    temperature_default = 1.0
    temperature_schedule = dict(start=30.0, end=1.0, epochs=10)
    temperature_doc = 'divides every attention logit; T > 0'
    takes_backbone_norm = True
    num_kernels_arg = 'kernel_num'
    example_kwargs = dict(kernel_num=3)
    example_variants = {
        '1x': dict(kernel_num=1),
        'unshared': dict(kernel_num=3, shared=False),
        'softmax': dict(kernel_num=3, spatial_activation='softmax'),
        'GN': dict(kernel_num=3, norm_cfg=dict(type='GN', num_groups=4)),
    }

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrPair,
                 stride: IntOrPair = 1,
                 padding: IntOrPair = 0,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 bias: bool = False,
                 kernel_num: int = 1,
                 reduction: float = 1 / 16,
                 min_channels: int = 16,
                 temperature: Optional[float] = 1.0,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 attentions: Sequence[str] = ODCONV_ATTENTIONS,
                 spatial_activation: str = 'sigmoid',
                 shared: bool = True) -> None:
        check_positive_int('ODConv2d', 'kernel_num', kernel_num)
        check_positive_int('ODConv2d', 'min_channels', min_channels)
        if not 0 < reduction <= 1:
            raise ValueError('ODConv2d: reduction must be in (0, 1], got '
                             f'{reduction}')
        attentions = _check_attentions(attentions, kernel_num)
        if spatial_activation not in SPATIAL_ACTIVATIONS:
            raise ValueError('ODConv2d: spatial_activation must be one of '
                             f'{SPATIAL_ACTIVATIONS}, got '
                             f'{spatial_activation!r}')
        if not isinstance(shared, bool):
            raise ValueError('ODConv2d: shared must be True (attentions '
                             'shared by the kernels, as released) or False '
                             f'(one set per kernel), got {shared!r}')
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, kernel_num)
        self.temperature = temperature
        self.attentions = attentions
        self.spatial_activation = spatial_activation
        self.shared = shared
        self.attention = ODConvAttention(
            in_channels,
            out_channels,
            self.kernel_size[0] * self.kernel_size[1],
            groups,
            kernel_num,
            reduction=reduction,
            min_channels=min_channels,
            norm_cfg=norm_cfg,
            attentions=attentions,
            spatial_activation=spatial_activation,
            shared=shared)
        self.init_weights()

    def init_weights(self) -> None:
        """Kernels and attention as released (Kaiming fan_out, BN 1/0)."""
        super().init_weights()
        self.attention.init_weights()

    def produced_attentions(self) -> Tuple[str, ...]:
        """The requested ``attentions`` that apply: ``in_channel``;
        ``out_channel`` unless depthwise, ``spatial`` unless 1x1, ``kernel``
        unless one kernel."""
        return self.attention.head_names()

    def per_kernel_attentions(self) -> Tuple[str, ...]:
        """With ``shared=False`` and several kernels: the produced channel,
        filter and spatial attentions."""
        if self.attention.per_kernel == 1:
            return ()
        return tuple(name for name in self.produced_attentions()
                     if name != 'kernel')

    def attention_from_pooled(self, pooled: Tensor) -> DynamicAttention:
        """The attentions of :class:`ODConvAttention` from the pooled
        input."""
        return self.attention.from_pooled(pooled, self.temperature)

    def inference_attention(self, x: Tensor) -> DynamicAttention:
        """The attention from the norm-folded, packed weights
        (:meth:`ODConvAttention.inference_weights`, cached until the
        attention's state or the temperature changes); a trunk norm that
        does not fold (e.g. GN, or a BatchNorm left in training mode)
        computes the attention as :meth:`compute_attention` does."""
        attention = self.attention
        norm = attention.bn
        if norm is None or not norm.training:
            temperature = self.temperature
            weights = self.inference_cache(
                attention, lambda: attention.inference_weights(temperature),
                temperature)
            if weights is NO_HEADS:
                return DynamicAttention()
            if weights is not None:
                return attention.forward_inference(x, weights)
        return self.attention_from_pooled(x.mean((2, 3)))

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.attentions != ODCONV_ATTENTIONS:
            s += f', attentions={self.attentions}'
        if self.spatial_activation != 'sigmoid':
            s += f', spatial_activation={self.spatial_activation!r}'
        if not self.shared:
            s += ', shared=False'
        return s


def _check_attentions(attentions: Sequence[str],
                      kernel_num: int) -> Tuple[str, ...]:
    """``attentions`` as a tuple in head order, or a ``ValueError``."""
    if isinstance(
            attentions,
            str) or not all(isinstance(name, str) for name in attentions):
        raise ValueError(
            'ODConv2d: attentions must be a list of attention names (any of '
            f'{ODCONV_ATTENTIONS}), got {attentions!r}')
    unknown = sorted(set(attentions) - set(ODCONV_ATTENTIONS))
    if unknown:
        raise ValueError(f'ODConv2d: unknown attentions {unknown}; choose '
                         f'from {ODCONV_ATTENTIONS}')
    if len(set(attentions)) != len(attentions):
        raise ValueError('ODConv2d: attentions lists a name twice: '
                         f'{tuple(attentions)}')
    if kernel_num > 1 and 'kernel' not in attentions:
        raise ValueError(
            f"ODConv2d: kernel_num={kernel_num} needs the 'kernel' "
            'attention to mix the kernels; add it to attentions or use '
            'kernel_num=1')
    return tuple(name for name in ODCONV_ATTENTIONS if name in attentions)
