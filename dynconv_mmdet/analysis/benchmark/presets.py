"""The variants the benchmark times: the backbones' presets and a user's
layouts.

The dynamic variants are never listed here: the presets of a backbone come
from its own table (``DynamicResNet.presets``,
``DynamicMobileNetV2.presets``, :mod:`dynconv_mmdet.models.backbones.
layout`), and the layer kinds are the ``conv_cfg`` of every dynamic preset
of the ResNet table (the layer shapes are ResNet-50's). A user's own layout
(``--dynamic``) is benchmarked as one more row (its name, or
:data:`CUSTOM`).
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS

from ...models.layers import DynamicConv2d
from ..cli import read_layout, read_named_layout


class UsageError(ValueError):
    """A bad command line; the message says what to do."""


#: Name of the row of a user's layout given without a name (``--dynamic``).
CUSTOM = 'custom'
#: The backbone whose preset table gives the layer kinds.
LAYER_BACKBONE = dict(type='DynamicResNet', depth=50)


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


def check_presets(presets: Optional[Sequence[str]], cfgs: List[dict]) -> None:
    """Every name of ``--presets`` is a preset of one of ``cfgs``' tables.

    Raises:
        UsageError: Says which are unknown and which are known.
    """
    if not presets:
        return
    known = set()
    for cfg in cfgs:
        known.update(preset_table(cfg))
    unknown = sorted(set(presets) - known)
    if unknown:
        raise UsageError(f'--presets: unknown {unknown}; the preset tables '
                         f'of the benchmarked backbones have {sorted(known)}')


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


def families(module: nn.Module) -> str:
    """The class names of ``module``'s dynamic convs, sorted."""
    names = sorted({
        type(m).__name__
        for m in module.modules() if isinstance(m, DynamicConv2d)
    })
    return ', '.join(names)


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
