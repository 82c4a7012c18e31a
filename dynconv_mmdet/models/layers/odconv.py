"""Omni-dimensional dynamic convolution (ODConv).

Li, Zhou, Yao. "Omni-Dimensional Dynamic Convolution", ICLR 2022
(arXiv 2209.07947). With the default arguments, numerically the released
module (github OSVAI/ODConv), with the same parameter names so that official
checkpoints load unchanged. The paper's ablations (Tables 7, 11 and 12) are
switches: which of the four attentions are used, sigmoid or softmax for the
spatial attention, and attentions shared by the kernels or one set per kernel
(the "unshared" variant).
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.registry import MODELS
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from .base import (DynamicAttention, DynamicConv2d, IntOrPair,
                   TemperatureMixin, _check_positive_int, global_average,
                   init_attention_weights, normalise_pooled)

#: The four attentions of ODConv (:class:`DynamicAttention` field names), in
#: the order of their heads: ``channel_fc``, ``filter_fc``, ``spatial_fc``,
#: ``kernel_fc``.
ODCONV_ATTENTIONS = ('in_channel', 'out_channel', 'spatial', 'kernel')
#: Activations of the spatial attention.
SPATIAL_ACTIVATIONS = ('sigmoid', 'softmax')
#: :meth:`ODConvAttention.inference_weights` of an attention without heads.
NO_HEADS = 'no heads'


def _linear_1x1(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """Apply a 1x1 ``nn.Conv2d`` to pooled features ``[B, C]``."""
    return F.linear(x, conv.weight.flatten(1), conv.bias)


class _Head(NamedTuple):
    """How the logits of one head become an attention."""
    name: str  # DynamicAttention field
    size: int  # logits: per_kernel * width
    per_kernel: int  # 1 (shared by the kernels) or K (one set per kernel)
    softmax: bool  # softmax over the last axis, else sigmoid


class _InferenceWeights(NamedTuple):
    """:meth:`ODConvAttention.inference_weights`."""
    trunk_weight: Tensor  # [C_in, A], norm folded in
    trunk_bias: Tensor  # [A]
    head_weight: Tensor  # [A, sum of head sizes], divided by temperature
    head_bias: Tensor  # [sum of head sizes]
    layout: Tuple[_Head, ...]
    sizes: Tuple[int, ...]  # head sizes


def _attentions(logits: Tensor,
                layout: Sequence[_Head],
                inplace: bool,
                sizes: Optional[Sequence[int]] = None) -> DynamicAttention:
    """The attentions from the logits of all heads ``[B, sum of sizes]``.

    The softmax heads read their slices of the logits first; then one
    sigmoid runs over all logits (in place with ``inplace``: the slices are
    views, so they hold the sigmoid afterwards), and the sigmoid heads take
    their slices. Heads with one set per kernel become ``[B, K, n]``.
    """
    batch = logits.size(0)
    if sizes is None:
        sizes = [head.size for head in layout]
    pieces = logits.split(sizes, dim=1)
    out: Dict[str, Tensor] = {}
    for head, piece in zip(layout, pieces):
        if head.softmax:
            if head.per_kernel > 1:
                piece = piece.view(batch, head.per_kernel, -1)
            out[head.name] = torch.softmax(piece, dim=-1)
    if inplace:
        logits.sigmoid_()
        gates = pieces
    else:
        gates = torch.sigmoid(logits).split(sizes, dim=1)
    for head, gate in zip(layout, gates):
        if head.softmax:
            continue
        if head.per_kernel > 1:
            gate = gate.view(batch, head.per_kernel, -1)
        out[head.name] = gate
    return DynamicAttention(**out)


class ODConvAttention(nn.Module):
    """The attentions of ODConv from one shared trunk.

    Trunk: global average pooling -> 1x1 conv ``C_in -> A`` (no bias) ->
    norm -> ReLU, with ``A = max(int(C_in * reduction), min_channels)``.
    Heads (1x1 convs with bias, logits divided by the temperature):
    ``channel_fc`` (``A -> C_in``, sigmoid), ``filter_fc`` (``A -> C_out``,
    sigmoid; absent for depthwise convs), ``spatial_fc`` (``A -> kh * kw``,
    sigmoid or softmax over the ``kh * kw`` positions; absent for 1x1
    kernels) and ``kernel_fc`` (``A -> K``, softmax over ``K``; absent for
    one kernel). An absent head stands for 1.

    Switches (ODConv paper, Tables 7, 11, 12; the defaults are the release):
    ``attentions`` keeps only the named heads (a head that does not apply to
    the conv is absent anyway; with no head at all there is no trunk
    either); ``spatial_activation``; ``shared=False`` gives every kernel its
    own channel, filter and spatial attention (those heads output ``K``
    times as many logits, kernel-major: the attention of kernel ``i`` is
    ``[i * n, (i + 1) * n)``), the kernel attention stays one softmax over
    ``K``.

    Normalisation: ``norm_cfg`` builds the trunk norm (BN as released; a
    backbone passes its own, e.g. SyncBN). The module keeps the released name
    ``bn`` whatever the norm type. A BatchNorm in training mode cannot compute
    statistics from a single sample (the released module fails there): for a
    batch of one, the trunk is normalised with the running statistics, as in
    evaluation, and the running statistics stay unchanged. SyncBN across
    several processes uses the statistics of the global batch as usual.
    ``norm_cfg=None`` removes the norm and gives the trunk conv a bias.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_numel: int,
                 groups: int,
                 kernel_num: int,
                 reduction: float = 1 / 16,
                 min_channels: int = 16,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 attentions: Sequence[str] = ODCONV_ATTENTIONS,
                 spatial_activation: str = 'sigmoid',
                 shared: bool = True) -> None:
        super().__init__()
        hidden = max(int(in_channels * reduction), min_channels)
        self.hidden_channels = hidden
        self.spatial_activation = spatial_activation
        # one set of channel / filter / spatial attentions per kernel
        per_kernel = 1 if shared else kernel_num
        self.per_kernel = per_kernel
        depthwise = in_channels == groups == out_channels
        applies = dict(
            in_channel=True,
            out_channel=not depthwise,
            spatial=kernel_numel > 1,
            kernel=kernel_num > 1)
        widths = dict(
            in_channel=in_channels * per_kernel,
            out_channel=out_channels * per_kernel,
            spatial=kernel_numel * per_kernel,
            kernel=kernel_num)
        heads = {
            name:
            nn.Conv2d(hidden, widths[name], 1)
            if name in attentions and applies[name] else None
            for name in ODCONV_ATTENTIONS
        }
        if any(head is not None for head in heads.values()):
            self.fc = nn.Conv2d(in_channels, hidden, 1, bias=norm_cfg is None)
            self.bn = None if norm_cfg is None else build_norm_layer(
                norm_cfg, hidden)[1]
        else:
            self.fc = self.bn = None
        self.channel_fc = heads['in_channel']
        self.filter_fc = heads['out_channel']
        self.spatial_fc = heads['spatial']
        self.kernel_fc = heads['kernel']
        self.init_weights()

    def init_weights(self) -> None:
        """Kaiming-normal (fan_out) convs with zero bias; norm 1 / 0."""
        init_attention_weights(self, (nn.Conv2d, ))

    def _normalise(self, z: Tensor) -> Tensor:
        return normalise_pooled(self.bn, z)

    def _heads(self) -> List[Tuple[str, nn.Conv2d]]:
        """``(attention name, head)`` of the present heads."""
        heads = (('in_channel', self.channel_fc), ('out_channel',
                                                   self.filter_fc),
                 ('spatial', self.spatial_fc), ('kernel', self.kernel_fc))
        return [(name, head) for name, head in heads if head is not None]

    def _layout(self) -> Tuple[_Head, ...]:
        """How the logits of the present heads become attentions."""
        softmax = dict(
            kernel=True, spatial=self.spatial_activation == 'softmax')
        return tuple(
            _Head(name, head.out_channels, 1 if name ==
                  'kernel' else self.per_kernel, softmax.get(name, False))
            for name, head in self._heads())

    def forward(self, x: Tensor, temperature: float) -> DynamicAttention:
        """Input ``[B, C_in, H, W]`` -> attentions (see the class doc)."""
        return self.from_pooled(global_average(x), temperature)

    def from_pooled(self, pooled: Tensor,
                    temperature: float) -> DynamicAttention:
        """Attentions from the globally averaged input ``[B, C_in]``.

        The heads run as one matrix product over their concatenated weights,
        with one sigmoid (and a softmax per softmax head): the same numbers
        as separate 1x1 convs with a third of the operator calls. Shapes:
        ``[B, n]`` for a shared attention, ``[B, K, n]`` for one per kernel.
        """
        heads = self._heads()
        if not heads:
            return DynamicAttention()
        z = _linear_1x1(pooled, self.fc)
        z = F.relu(self._normalise(z))
        logits = F.linear(z,
                          torch.cat([h.weight.flatten(1) for _, h in heads]),
                          torch.cat([h.bias for _, h in heads]))
        if temperature != 1:
            logits = logits / temperature
        return _attentions(logits, self._layout(), inplace=False)

    # ------------------------------------------------------------------
    # Inference form: eval mode, no autograd
    def inference_weights(
            self, temperature: float) -> Union[None, _InferenceWeights, str]:
        """The attention as two affine maps, for :meth:`forward_inference`.

        The trunk conv with the BatchNorm folded in as evaluation computes
        it (running statistics), ``W' = diag(s) W``,
        ``b' = s * (b - mean) + beta`` with ``s = gamma / sqrt(var + eps)``,
        and the heads packed into one matrix (rows in the order channel,
        filter, spatial, kernel) with the temperature divided in; both
        transposed for ``addmm``. Valid while the norm is in eval mode.

        Returns:
            The weights; :data:`NO_HEADS` without any head; ``None`` when
            the norm is not affine at inference (e.g. GN, or a BatchNorm
            without running statistics).
        """
        heads = self._heads()
        if not heads:
            return NO_HEADS
        norm = self.bn
        if norm is not None and not (isinstance(norm, _BatchNorm)
                                     and norm.running_mean is not None):
            return None
        hidden = self.hidden_channels
        weight = self.fc.weight.reshape(hidden, -1)
        bias = self.fc.bias
        norm = self.bn
        if norm is not None:
            scale = torch.rsqrt(norm.running_var + norm.eps)
            if norm.weight is not None:
                scale = scale * norm.weight
            shift = -norm.running_mean if bias is None else (bias -
                                                             norm.running_mean)
            shift = shift * scale
            if norm.bias is not None:
                shift = shift + norm.bias
            weight, bias = weight * scale[:, None], shift
        head_weight = torch.cat(
            [h.weight.reshape(-1, hidden) for _, h in heads])
        head_bias = torch.cat([h.bias for _, h in heads])
        if temperature != 1:
            head_weight = head_weight / temperature
            head_bias = head_bias / temperature
        layout = self._layout()
        return _InferenceWeights(weight.t().contiguous(), bias.contiguous(),
                                 head_weight.t().contiguous(),
                                 head_bias.contiguous(), layout,
                                 tuple(head.size for head in layout))

    @staticmethod
    def forward_inference(x: Tensor,
                          weights: _InferenceWeights) -> DynamicAttention:
        """:meth:`forward` from :meth:`inference_weights`, without autograd:
        pooling, two ``addmm`` (the second on the in-place ReLU), the
        softmaxes, then one sigmoid in place over all logits."""
        hidden = torch.addmm(weights.trunk_bias, x.mean((2, 3)),
                             weights.trunk_weight).relu_()
        logits = torch.addmm(weights.head_bias, hidden, weights.head_weight)
        return _attentions(logits, weights.layout, True, weights.sizes)


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
        kernel_num (int): Number of kernels ``K`` (1 or 4 in the paper).
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
        _check_positive_int('ODConv2d', 'kernel_num', kernel_num)
        _check_positive_int('ODConv2d', 'min_channels', min_channels)
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

    @property
    def kernel_num(self) -> int:
        """Number of kernels ``K``."""
        return self.num_kernels

    def init_weights(self) -> None:
        """Kernels and attention as released (Kaiming fan_out, BN 1/0)."""
        super().init_weights()
        self.attention.init_weights()

    def produced_attentions(self) -> Tuple[str, ...]:
        """The requested ``attentions`` that apply: ``in_channel``;
        ``out_channel`` unless depthwise, ``spatial`` unless 1x1, ``kernel``
        unless one kernel."""
        return tuple(name for name, _ in self.attention._heads())

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
