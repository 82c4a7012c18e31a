"""What the benchmark times: layer shapes, backbones and their presets.

The dynamic variants are never listed here: the presets of a backbone come
from its own table (``DynamicResNet.presets``,
``DynamicMobileNetV2.presets``, :mod:`dynconv_mmdet.models.backbones.
layout`), and the layer kinds are the ``conv_cfg`` of every dynamic preset
of the ResNet table (the layer shapes are ResNet-50's). A user's own layout
(``--dynamic``) is benchmarked as one more row (its name, or
:data:`CUSTOM`).
"""
import copy
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS

from ...models.layers import DynamicConv2d, finalize_dynamic_convs
from ..cli import read_layout, read_named_layout

#: Name of the row of a user's layout given without a name (``--dynamic``).
CUSTOM = 'custom'

# ResNet-50 convs under a 1333x800 image padded to 1344x800:
# (name, C_in, C_out, k, stride, H, W) with H, W the input size.
RESNET50_LAYERS = (
    ('layer1 1x1', 256, 64, 1, 1, 200, 336),
    ('layer1 3x3', 64, 64, 3, 1, 200, 336),
    ('layer1 1x1', 64, 256, 1, 1, 200, 336),
    ('layer2 3x3', 128, 128, 3, 1, 100, 168),
    ('layer2 1x1', 128, 512, 1, 1, 100, 168),
    ('layer3 3x3', 256, 256, 3, 1, 50, 84),
    ('layer3 1x1', 1024, 256, 1, 1, 50, 84),
    ('layer4 3x3', 512, 512, 3, 1, 25, 42),
    ('layer4 1x1', 512, 2048, 1, 1, 25, 42),
)
QUICK_LAYERS = (
    ('layer1 3x3', 16, 16, 3, 1, 12, 16),
    ('layer1 1x1', 16, 32, 1, 1, 12, 16),
)
#: The backbone whose preset table gives the layer kinds.
LAYER_BACKBONE = dict(type='DynamicResNet', depth=50)


@dataclass(frozen=True)
class BackboneSpec:
    """A benchmarked backbone.

    Attributes:
        name (str): Row label.
        cfg (dict): mmdet config, without ``preset``.
        sizes (tuple[int]): Square input sizes of the eager rows; inference
            runs at every size, the training step at the first.
        compiled_sizes (tuple[int]): Sizes of the compiled rows.
        gpu_sizes, gpu_compiled_sizes (tuple[int]): The same for
            ``--gpu-subset``.
    """
    name: str
    cfg: dict
    sizes: Tuple[int, ...]
    compiled_sizes: Tuple[int, ...] = ()
    gpu_sizes: Tuple[int, ...] = ()
    gpu_compiled_sizes: Tuple[int, ...] = ()


BACKBONES = (
    BackboneSpec('ResNet-50', dict(type='DynamicResNet', depth=50), (800, ),
                 (800, ), (800, )),
    BackboneSpec('MobileNetV2 1.0',
                 dict(type='DynamicMobileNetV2', widen_factor=1.0), (800, 320),
                 (800, 320), (800, 320), (320, )),
    BackboneSpec('MobileNetV2 0.5',
                 dict(type='DynamicMobileNetV2', widen_factor=0.5), (800, 320),
                 (), (320, )),
)
QUICK_BACKBONES = (
    BackboneSpec('ResNet-18 w16',
                 dict(type='DynamicResNet', depth=18, base_channels=16),
                 (32, ), (32, ), (32, ), (32, )),
    BackboneSpec('MobileNetV2 0.5',
                 dict(type='DynamicMobileNetV2', widen_factor=0.5), (32, ),
                 (32, ), (32, )),
)


def backbone_class(cfg: dict) -> type:
    """The class of a backbone config (from mmdet's registry)."""
    cls = MODELS.get(cfg['type'])
    if cls is None:
        raise KeyError(f'backbone type {cfg["type"]!r} is not registered; '
                       'import its package first (--custom-imports)')
    return cls


def preset_table(cfg: dict) -> Dict[str, Optional[dict]]:
    """The preset table of a dynamic backbone type."""
    cls = backbone_class(cfg)
    table = getattr(cls, 'presets', None)
    if not table:
        raise ValueError(f'{cls.__name__} has no preset table (`presets`); '
                         'the benchmark times dynamic backbones only')
    return table


def static_preset(cfg: dict) -> str:
    """The name of the static preset (the one without a layout)."""
    for name, layout in preset_table(cfg).items():
        if layout is None:
            return name
    raise ValueError(f'{cfg["type"]} has no static preset (a `None` entry '
                     'of its `presets`)')


def dynamic_presets(cfg: dict,
                    only: Optional[Sequence[str]] = None) -> Dict[str, dict]:
    """``name -> layout`` of every dynamic preset of the backbone's table
    (restricted to ``only`` when given), in table order."""
    return {
        name: layout
        for name, layout in preset_table(cfg).items()
        if layout is not None and (only is None or name in only)
    }


def layer_kinds(only: Optional[Sequence[str]] = None,
                custom: Optional[Dict[str, dict]] = None) -> Dict[str, dict]:
    """``kind -> conv_cfg`` of the layer rows: the ``conv_cfg`` of every
    dynamic preset of :data:`LAYER_BACKBONE`'s table, then those of the
    user's layouts (``custom``: name -> ``dynamic=`` dict)."""
    kinds = {
        name: dict(layout['conv_cfg'])
        for name, layout in dynamic_presets(LAYER_BACKBONE, only).items()
    }
    for name, layout in (custom or {}).items():
        kinds[name] = dict(layout['conv_cfg'])
    return kinds


def parse_layout(text: str) -> Tuple[str, dict]:
    """A ``--dynamic`` argument: ``NAME=DICT`` or a bare ``DICT`` (named
    :data:`CUSTOM`), the dict a ``dynamic=`` layout read by
    :func:`dynconv_mmdet.analysis.cli.read_layout` (the complexity tool's
    reader), e.g. ``"dict(conv_cfg=dict(type='FooConv2d'),
    stages=(True,)*4)"``.

    Raises:
        ValueError: Not such a dict, or no ``conv_cfg`` with a ``type``.
    """
    name, sep, _ = text.partition('=')
    try:
        if sep and name.strip().isidentifier():
            (name, layout), = read_named_layout(text.strip()).items()
        else:
            name, layout = CUSTOM, read_layout(text.strip())
    except ValueError as err:
        raise ValueError(f'--dynamic: {err}') from err
    if not isinstance(layout.get('conv_cfg'), dict) or \
            'type' not in layout['conv_cfg']:
        raise ValueError(
            f'--dynamic {text!r}: a layout is a dict with `conv_cfg` '
            "holding a `type`, e.g. \"dict(conv_cfg=dict(type='FooConv2d'), "
            'stages=(True,)*4)"')
    return name, layout


def has_dynamic_convs(module: nn.Module) -> bool:
    """Whether ``module`` holds at least one dynamic conv."""
    return any(isinstance(m, DynamicConv2d) for m in module.modules())


def build_layer(cin: int, cout: int, k: int, stride: int, conv_cfg: dict,
                device: torch.device) -> nn.Module:
    """One conv of type ``conv_cfg`` (padding ``k // 2``, no bias).

    A family that completes its convs as a group
    (:meth:`~dynconv_mmdet.models.layers.DynamicConv2d.finalize_group`) is
    finalised as a group of one; should it add shared state, the conv is
    returned inside the ``nn.Sequential`` that holds it.
    """
    cfg = dict(
        copy.deepcopy(conv_cfg),
        in_channels=cin,
        out_channels=cout,
        kernel_size=k,
        stride=stride,
        padding=k // 2,
        bias=False)
    holder = nn.Sequential(MODELS.build(cfg))
    finalize_dynamic_convs(holder)
    shared = (
        len(holder._modules) > 1 or bool(holder._parameters)
        or bool(holder._buffers))
    return (holder if shared else holder[0]).to(device)


def build_static_layer(cin: int, cout: int, k: int, stride: int,
                       device: torch.device) -> nn.Module:
    """The static twin of :func:`build_layer`."""
    return nn.Conv2d(cin, cout, k, stride, k // 2, bias=False).to(device)


def build_backbone(cfg: dict,
                   preset: str,
                   device: torch.device,
                   dynamic: Optional[dict] = None) -> nn.Module:
    """A backbone with its constructor initialisation (PyTorch defaults for
    static convs, each family's init for dynamic convs); ``dynamic``
    overrides the preset's layout (the user's row)."""
    cfg = dict(copy.deepcopy(cfg), preset=preset, _scope_='mmdet')
    if dynamic is not None:
        cfg['dynamic'] = copy.deepcopy(dynamic)
    return MODELS.build(cfg).to(device)
