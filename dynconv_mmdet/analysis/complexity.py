"""Parameters and FLOPs of backbones with dynamic convolutions.

Convention (as mmdet's ``get_flops`` / fvcore): **1 multiply-add = 1 FLOP**.

* ``nn.Conv2d`` / ``nn.Linear``: multiply-adds, bias not counted.
* A :class:`~dynconv_mmdet.models.layers.DynamicConv2d` is counted as a whole
  from what :func:`~dynconv_mmdet.models.layers.functional.dynamic_conv2d`
  computes for the given input (its attention layers are not counted a second
  time):

  - global average pooling: ``C_in * H * W`` (one add per input element);
  - attention MLP: the multiply-adds of its fully connected layers
    (CondConv, NeurIPS 2019: ``C_in -> E``; DyConv, CVPR 2020:
    ``C_in -> C_in / 4 -> K``; ODConv, ICLR 2022: ``C_in -> A`` and the heads
    ``A -> C_in``, ``A -> C_out``, ``A -> kh * kw``, ``A -> K`` that exist);
  - kernel aggregation: ``K * N`` for the mixture (``N = C_out * C_in / g *
    kh * kw``, nothing when ``K = 1``), ``C_in / g * kh * kw`` to combine the
    input-channel and spatial attention, and ``N`` per attention multiplied
    into the kernel;
  - channel attention applied to feature maps instead: one multiply per
    element of the map;
  - the convolution itself: ``N * H_out * W_out`` per sample.

* Normalisation, activations (sigmoid, softmax, ReLU), max pooling, residual
  additions and biases are not counted, for static and dynamic layers alike.

All counts are per batch of the given input (use batch 1 for per image).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from ..models.layers import CondConv2d, DyConv2d, DynamicConv2d, ODConv2d
from ..models.layers.functional import conv_output_size, fold_channel_attention


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not, buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def conv2d_flops(in_channels: int,
                 out_channels: int,
                 kernel_size: Tuple[int, int],
                 groups: int,
                 out_hw: Tuple[int, int],
                 batch: int = 1) -> int:
    """Multiply-adds of a convolution: ``B * C_out * C_in / g * kh * kw *
    H_out * W_out``."""
    return (batch * out_channels * (in_channels // groups) * kernel_size[0] *
            kernel_size[1] * out_hw[0] * out_hw[1])


def attention_flops(layer: DynamicConv2d) -> int:
    """Multiply-adds of the attention MLP of one dynamic layer, per sample.

    Pooling is counted separately (:func:`dynamic_conv2d_flops`).
    """
    cin = layer.in_channels
    if isinstance(layer, CondConv2d):
        return cin * layer.num_experts
    if isinstance(layer, DyConv2d):
        hidden = layer.attention.fc1.out_features
        return cin * hidden + hidden * layer.num_kernels
    if isinstance(layer, ODConv2d):
        att = layer.attention
        hidden = att.hidden_channels
        total = cin * hidden
        for head in (att.channel_fc, att.filter_fc, att.spatial_fc,
                     att.kernel_fc):
            if head is not None:
                total += hidden * head.out_channels
        return total
    raise TypeError(f'no FLOP formula for {type(layer).__name__}; add one to '
                    'dynconv_mmdet.analysis.complexity.attention_flops')


def _attention_presence(layer: DynamicConv2d) -> Tuple[bool, bool, bool, bool]:
    """Which attentions a layer produces: kernel, spatial, in, out."""
    if isinstance(layer, ODConv2d):
        att = layer.attention
        return (att.kernel_fc is not None, att.spatial_fc
                is not None, True, att.filter_fc is not None)
    return True, False, False, False  # CondConv, DyConv: kernel attention


def dynamic_conv2d_flops(layer: DynamicConv2d,
                         input_shape: Sequence[int]) -> Dict[str, int]:
    """FLOPs of one dynamic conv for an input ``[B, C_in, H, W]``.

    Returns:
        dict: ``pool``, ``attention`` (MLP), ``aggregation`` (kernel mixture
        and attention multiplies on kernels or feature maps), ``conv`` and
        ``total``.
    """
    batch, cin, height, width = (int(v) for v in input_shape)
    num_kernels = layer.num_kernels
    cout, groups = layer.out_channels, layer.groups
    kh, kw = layer.kernel_size
    h_out = conv_output_size(height, kh, layer.stride[0], layer.padding[0],
                             layer.dilation[0])
    w_out = conv_output_size(width, kw, layer.stride[1], layer.padding[1],
                             layer.dilation[1])
    kernel_numel = cout * (cin // groups) * kh * kw
    has_kernel, has_spatial, has_in, has_out = _attention_presence(layer)
    per_sample = has_kernel or has_spatial
    fold_in, fold_out = fold_channel_attention(
        (batch, cin, height, width), tuple(layer.weight.shape), layer.stride,
        layer.padding, layer.dilation, groups, per_sample, has_in, has_out)
    agg = num_kernels * kernel_numel if has_kernel else 0
    if fold_in and has_spatial:
        agg += cin * kh * kw  # in_attn x spatial_attn
    agg += kernel_numel * ((fold_in or has_spatial) + fold_out)
    agg *= batch
    if has_in and not fold_in:
        agg += batch * cin * height * width
    if has_out and not fold_out:
        agg += batch * cout * h_out * w_out
    result = dict(
        pool=batch * cin * height * width,
        attention=batch * attention_flops(layer),
        aggregation=agg,
        conv=conv2d_flops(cin, cout, (kh, kw), groups, (h_out, w_out), batch))
    result['total'] = sum(result.values())
    return result


class FlopCounter:
    """Count FLOPs of a model's forward pass with forward hooks.

    Hooks go on every ``nn.Conv2d`` / ``nn.Linear`` outside dynamic layers and
    on every :class:`DynamicConv2d` (counted as a whole).

    Example:
        >>> counter = FlopCounter(model)
        >>> with torch.no_grad():
        ...     model(torch.zeros(1, 3, 800, 1333))
        >>> counter.total, counter.by_kind
        >>> counter.remove()
    """

    def __init__(self, model: nn.Module) -> None:
        self.by_kind: Dict[str, int] = {}
        self.by_module: Dict[str, int] = {}
        self._handles: List = []
        inside_dynamic = set()
        for name, module in model.named_modules():
            if isinstance(module, DynamicConv2d):
                inside_dynamic.update(
                    id(m) for m in module.modules() if m is not module)
        for name, module in model.named_modules():
            if id(module) in inside_dynamic:
                continue
            if isinstance(module, (nn.Conv2d, nn.Linear, DynamicConv2d)):
                self._handles.append(
                    module.register_forward_hook(self._make_hook(name)))

    def _add(self, name: str, kind: str, flops: int) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + flops
        self.by_module[name] = self.by_module.get(name, 0) + flops

    def _make_hook(self, name: str):

        def hook(module: nn.Module, inputs: Tuple[Tensor, ...],
                 output: Tensor) -> None:
            x = inputs[0]
            if isinstance(module, DynamicConv2d):
                counts = dynamic_conv2d_flops(module, x.shape)
                for kind in ('pool', 'attention', 'aggregation'):
                    self._add(name, f'dynamic {kind}', counts[kind])
                self._add(name, 'dynamic conv', counts['conv'])
            elif isinstance(module, nn.Conv2d):
                self._add(
                    name, 'static conv',
                    conv2d_flops(module.in_channels, module.out_channels,
                                 module.kernel_size, module.groups,
                                 tuple(output.shape[-2:]), output.size(0)))
            else:
                self._add(
                    name, 'linear',
                    output.numel() // output.size(-1) * module.in_features *
                    module.out_features)

        return hook

    @property
    def total(self) -> int:
        """All counted FLOPs."""
        return sum(self.by_kind.values())

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def model_flops(model: nn.Module,
                input_shape: Sequence[int] = (1, 3, 800, 1333),
                device: Optional[torch.device] = None) -> Dict[str, int]:
    """FLOPs of one forward pass of ``model`` (eval mode, no gradients).

    Returns:
        dict: ``total`` and one entry per kind (``static conv``, ``linear``,
        ``dynamic conv``, ``dynamic pool``, ``dynamic attention``,
        ``dynamic aggregation``).
    """
    was_training = model.training
    model.eval()
    if device is None:
        device = next(model.parameters()).device
    counter = FlopCounter(model)
    try:
        with torch.no_grad():
            model(torch.zeros(*input_shape, device=device))
    finally:
        counter.remove()
        model.train(was_training)
    return dict(counter.by_kind, total=counter.total)


BACKBONE_CFGS = {
    'ResNet-50': dict(type='DynamicResNet', depth=50),
    'MobileNetV2 1.0': dict(type='DynamicMobileNetV2', widen_factor=1.0),
}
PRESETS = ('static', 'condconv8x', 'dyconv4x', 'odconv1x', 'odconv4x')


def backbone_complexity(backbones: Sequence[str] = tuple(BACKBONE_CFGS),
                        presets: Sequence[str] = PRESETS,
                        input_shape: Sequence[int] = (1, 3, 800, 1333),
                        device: str = 'meta') -> List[Dict]:
    """Parameters and FLOPs of every backbone preset.

    The models are built on ``device``; the default ``'meta'`` allocates no
    memory and runs no arithmetic (only shapes are needed).

    Returns:
        list[dict]: One row per backbone and preset with ``params``,
        ``extra_params`` (over the static backbone), ``flops``,
        ``extra_flops``, ``dynamic_overhead_flops`` (pooling, attention and
        aggregation) and ``flops_by_kind``.
    """
    from mmdet.registry import MODELS
    rows = []

    def build(name: str, preset: str) -> nn.Module:
        with torch.device(device):
            return MODELS.build(
                dict(BACKBONE_CFGS[name], preset=preset, _scope_='mmdet'))

    for name in backbones:
        static = build(name, 'static')
        base_params = count_parameters(static)
        base_flops = model_flops(static, input_shape)['total']
        del static
        for preset in presets:
            model = build(name, preset)
            params = count_parameters(model)
            flops = model_flops(model, input_shape)
            overhead = sum(
                flops.get(f'dynamic {k}', 0)
                for k in ('pool', 'attention', 'aggregation'))
            rows.append(
                dict(
                    backbone=name,
                    preset=preset,
                    params=params,
                    extra_params=params - base_params,
                    flops=flops['total'],
                    extra_flops=flops['total'] - base_flops,
                    dynamic_overhead_flops=overhead,
                    flops_by_kind=flops))
    return rows


def format_complexity_table(rows: List[Dict],
                            input_shape: Sequence[int]) -> str:
    """Markdown table of :func:`backbone_complexity` rows."""
    hw = f'{input_shape[-1]}x{input_shape[-2]}'
    lines = [
        f'| backbone | preset | params | extra params | GFLOPs @ {hw} | '
        'extra GFLOPs | attention + aggregation GFLOPs |',
        '|---|---|---:|---:|---:|---:|---:|'
    ]
    for r in rows:
        lines.append(f'| {r["backbone"]} | {r["preset"]} | '
                     f'{r["params"]:,} | {r["extra_params"] / 1e6:+.2f}M | '
                     f'{r["flops"] / 1e9:.2f} | '
                     f'{r["extra_flops"] / 1e9:+.3f} | '
                     f'{r["dynamic_overhead_flops"] / 1e9:.3f} |')
    return '\n'.join(lines)
