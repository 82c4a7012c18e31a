"""The attention of ODConv (:class:`ODConvAttention`): four attentions from
one shared trunk, and their inference form (norm folded in, heads packed).

Li, Zhou, Yao. "Omni-Dimensional Dynamic Convolution", ICLR 2022; the
released module's ``Attention`` (github OSVAI/ODConv), with its parameter
names.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from .attention import (DynamicAttention, global_average,
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

    def head_names(self) -> Tuple[str, ...]:
        """The attentions of the present heads (:class:`DynamicAttention`
        field names, in head order)."""
        return tuple(name for name, _ in self._heads())

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
