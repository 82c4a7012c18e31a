"""The attentions a family returns (:class:`DynamicAttention`), and the
helpers its attention module may share: global average pooling of the
layer's input, the norm applied to pooled features (with the single-sample
BatchNorm rule) and the released ODConv / KernelWarehouse initialisation.
"""
from typing import NamedTuple, Optional, Tuple

import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm


class DynamicAttention(NamedTuple):
    """Attentions of one forward pass; ``None`` stands for the constant 1.

    Shapes: ``kernel`` ``[B, K]``, ``spatial`` ``[B, kh * kw]``,
    ``in_channel`` ``[B, C_in]``, ``out_channel`` ``[B, C_out]``; the last
    three ``[B, K, n]`` when they come one per kernel
    (:meth:`~.base.DynamicConv2d.per_kernel_attentions`).
    """
    kernel: Optional[Tensor] = None
    spatial: Optional[Tensor] = None
    in_channel: Optional[Tensor] = None
    out_channel: Optional[Tensor] = None


#: :class:`DynamicAttention` fields in the order of
#: :attr:`~.functional.ConvInput.attentions`.
ATTENTION_FIELDS = ('kernel', 'spatial', 'in_channel', 'out_channel')


def global_average(x: Tensor) -> Tensor:
    """Global average pooling, ``[B, C, H, W]`` -> ``[B, C]``.

    Computed as a sum scaled afterwards: the gradient of the sum is a
    broadcast view of the pooled ``[B, C]`` gradient, which autograd adds to
    the conv's input gradient in one pass. ``mean``'s backward divides the
    broadcast gradient into a new feature-map-sized tensor first.
    """
    return x.sum(dim=(2, 3)) * (1.0 / (x.size(2) * x.size(3)))


def _synced_across_ranks(norm: nn.Module) -> bool:
    return (isinstance(norm, nn.SyncBatchNorm) and dist.is_available()
            and dist.is_initialized() and dist.get_world_size() > 1)


def normalise_pooled(norm: Optional[nn.Module], z: Tensor) -> Tensor:
    """Apply an attention's norm to pooled features ``[B, C]``.

    A BatchNorm in training mode cannot compute statistics from a single
    sample (the released ODConv / KernelWarehouse modules fail there): a
    batch of one is normalised with the running statistics, as in
    evaluation, and the running statistics stay unchanged. SyncBN across
    several processes uses the statistics of the global batch as usual.
    ``norm=None`` returns ``z``.
    """
    if norm is None:
        return z
    if (isinstance(norm, _BatchNorm) and norm.running_mean is not None
            and (not norm.training or
                 (z.size(0) == 1 and not _synced_across_ranks(norm)))):
        return F.batch_norm(z, norm.running_mean, norm.running_var,
                            norm.weight, norm.bias, False, 0.0, norm.eps)
    return norm(z.view(z.size(0), -1, 1, 1)).view(z.size(0), -1)


def init_attention_weights(module: nn.Module, layer_types: Tuple[type,
                                                                 ...]) -> None:
    """Initialise an attention module as the released ODConv /
    KernelWarehouse code does: Kaiming-normal (fan_out, ReLU) weights and
    zero biases for every submodule of ``layer_types``, weight 1 and bias 0
    for its norms."""
    for m in module.modules():
        if isinstance(m, layer_types):
            nn.init.kaiming_normal_(
                m.weight, mode='fan_out', nonlinearity='relu')
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (_BatchNorm, nn.GroupNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
