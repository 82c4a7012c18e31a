"""Parameters and FLOPs of backbones with dynamic convolutions.

Convention (as mmdet's ``get_flops`` / fvcore): **1 multiply-add = 1 FLOP**.

* ``nn.Conv2d`` / ``nn.Linear``: multiply-adds, bias not counted.
* A :class:`~dynconv_mmdet.models.layers.DynamicConv2d` is counted as a whole
  by its family (:meth:`~dynconv_mmdet.models.layers.DynamicConv2d.flops`,
  whose default counts what
  :func:`~dynconv_mmdet.models.layers.functional.dynamic_conv2d` computes:
  pooling, the attention's fully connected layers, the kernel aggregation and
  the convolution); its attention layers are not counted a second time.
* Normalisation, activations (sigmoid, softmax, ReLU), max pooling, residual
  additions and biases are not counted, for static and dynamic layers alike.

All counts are per batch of the given input (use batch 1 for per image).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from ..models.layers import DynamicConv2d
from .backbones import BACKBONES


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
    """Multiply-adds of the attention of one dynamic layer, per sample
    (pooling excluded): asked of the layer's family."""
    return layer.attention_flops()


def dynamic_conv2d_flops(layer: DynamicConv2d,
                         input_shape: Sequence[int]) -> Dict[str, int]:
    """FLOPs of one dynamic conv for an input ``[B, C_in, H, W]``.

    Returns:
        dict: ``pool``, ``attention``, ``aggregation``, ``conv`` (see
        :meth:`~dynconv_mmdet.models.layers.DynamicConv2d.flops`) and
        ``total``.
    """
    result = dict(layer.flops(input_shape))
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


#: The backbones the complexity tool counts (default: all of them), by
#: their rows in the table shared with the benchmark
#: (:data:`dynconv_mmdet.analysis.backbones.BACKBONES`).
COUNTED_BACKBONES = ('ResNet-50', 'MobileNetV2 1.0', 'CSPNeXt-tiny',
                     'CSPDarknet-S')
BACKBONE_CFGS = {name: BACKBONES[name] for name in COUNTED_BACKBONES}


def backbone_presets(backbone_cfg: dict) -> Tuple[str, ...]:
    """The presets of a backbone type, from its own table."""
    from mmdet.registry import MODELS
    return tuple(MODELS.get(backbone_cfg['type']).presets)


def padded_shape(input_shape: Sequence[int],
                 size_divisor: int = 32) -> Tuple[int, ...]:
    """``(B, C, H, W)`` with ``H`` and ``W`` rounded up to multiples of
    ``size_divisor``: the batch a detector's backbone sees after mmdet's
    ``DetDataPreprocessor(pad_size_divisor=32)`` (1333x800 -> 1344x800)."""
    *lead, h, w = input_shape
    return (*lead, -(-h // size_divisor) * size_divisor,
            -(-w // size_divisor) * size_divisor)


def backbone_complexity(backbones: Sequence[str] = tuple(BACKBONE_CFGS),
                        presets: Optional[Sequence[str]] = None,
                        input_shape: Sequence[int] = (1, 3, 800, 1333),
                        device: str = 'meta',
                        layouts: Optional[Dict[str, dict]] = None,
                        pad_size_divisor: int = 32) -> List[Dict]:
    """Parameters and FLOPs of every backbone preset (and extra layouts).

    The models are built on ``device``; the default ``'meta'`` allocates no
    memory and runs no arithmetic (only shapes are needed). FLOPs are
    counted on the input padded as the detectors' data preprocessors pad it
    (:func:`padded_shape`): the backbones see no other size, and some need
    it (CSPDarknet's Focus stem takes even sizes only).

    Args:
        backbones: Keys of :data:`BACKBONE_CFGS`.
        presets: Presets to count; default: every preset of each backbone's
            own table (a preset a backbone lacks is skipped for it).
        input_shape: ``(B, 3, H, W)``.
        device: Where the models are built.
        layouts: Extra rows: ``{row name: dynamic= layout}``, e.g. a
            third-party conv family placed by ``dict(conv_cfg=dict(
            type='FooConv2d'), stages=(True, ) * 4)``.
        pad_size_divisor: Pad ``H`` and ``W`` up to multiples of this
            (1: count the input as given).

    Returns:
        list[dict]: One row per backbone and preset / layout with
        ``params``, ``extra_params`` (over the static backbone), ``flops``,
        ``extra_flops``, ``dynamic_overhead_flops`` (pooling, attention and
        aggregation) and ``flops_by_kind``.

    Raises:
        ValueError: A requested preset that no requested backbone has.
    """
    from mmdet.registry import MODELS
    rows = []
    input_shape = padded_shape(input_shape, pad_size_divisor)

    def build(name: str, **kwargs) -> nn.Module:
        with torch.device(device):
            return MODELS.build(
                dict(BACKBONE_CFGS[name], _scope_='mmdet', **kwargs))

    if presets:
        known = set().union(*(backbone_presets(BACKBONE_CFGS[name])
                              for name in backbones))
        unknown = sorted(set(presets) - known)
        if unknown:
            raise ValueError(f'unknown presets {unknown}; the backbones\' '
                             f'tables have {sorted(known)}')
    for name in backbones:
        static = build(name, preset='static')
        base_params = count_parameters(static)
        base_flops = model_flops(static, input_shape)['total']
        del static
        own = backbone_presets(BACKBONE_CFGS[name])
        variants = [(p, dict(preset=p)) for p in (presets or own) if p in own]
        variants += [(row, dict(dynamic=layout))
                     for row, layout in (layouts or {}).items()]
        for row, kwargs in variants:
            model = build(name, **kwargs)
            params = count_parameters(model)
            flops = model_flops(model, input_shape)
            overhead = sum(
                flops.get(f'dynamic {k}', 0)
                for k in ('pool', 'attention', 'aggregation'))
            rows.append(
                dict(
                    backbone=name,
                    preset=row,
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
