"""Which convolutions of a backbone are dynamic: presets and helpers.

The presets follow the layouts that the published parameter counts pin
(ODConv paper, Table 4 and the released code; CondConv and DyConv as the
ODConv paper compares them):

* CondConv (8 experts): the three block convs of every block of the last
  ResNet stage; downsample and stem static. For MobileNetV2 no published
  count pins a layout: we make the block convs of the last three stages
  (``layer5``-``layer7``, 96/160/320 channels) and the final 1x1 conv dynamic,
  the analogue of "the last stage" of a ResNet.
* DyConv (4 kernels): every conv except the stem, the downsample 1x1 included.
* ODConv (1 or 4 kernels): every block conv (and MobileNetV2's final 1x1
  conv); stem and downsample static.
"""
import copy
from typing import Dict, Optional

import torch.nn as nn
from mmcv.cnn import build_conv_layer

from ..layers.conv_types import check_conv_type

RESNET_PRESETS: Dict[str, Optional[dict]] = {
    'static':
    None,
    'condconv8x':
    dict(
        conv_cfg=dict(type='CondConv2d', num_experts=8),
        stages=(False, False, False, True),
        downsample=False),
    'dyconv4x':
    dict(
        conv_cfg=dict(type='DyConv2d', kernel_num=4),
        stages=(True, True, True, True),
        downsample=True),
    'odconv1x':
    dict(
        conv_cfg=dict(type='ODConv2d', kernel_num=1),
        stages=(True, True, True, True),
        downsample=False),
    'odconv4x':
    dict(
        conv_cfg=dict(type='ODConv2d', kernel_num=4),
        stages=(True, True, True, True),
        downsample=False),
}

MOBILENET_V2_PRESETS: Dict[str, Optional[dict]] = {
    'static':
    None,
    'condconv8x':
    dict(
        conv_cfg=dict(type='CondConv2d', num_experts=8),
        stages=(False, False, False, False, True, True, True),
        last_conv=True),
    'dyconv4x':
    dict(
        conv_cfg=dict(type='DyConv2d', kernel_num=4),
        stages=(True, ) * 7,
        last_conv=True),
    'odconv1x':
    dict(
        conv_cfg=dict(type='ODConv2d', kernel_num=1),
        stages=(True, ) * 7,
        last_conv=True),
    'odconv4x':
    dict(
        conv_cfg=dict(type='ODConv2d', kernel_num=4),
        stages=(True, ) * 7,
        last_conv=True),
}


def resolve_layout(presets: Dict[str, Optional[dict]], preset: str,
                   dynamic: Optional[dict], defaults: dict,
                   owner: str) -> dict:
    """Merge a preset with user overrides into a complete layout dict.

    Args:
        presets: Preset table.
        preset: Preset name.
        dynamic: Overrides of any layout field (``conv_cfg``, ...).
        defaults: Every layout field with its static default.
        owner: Class name, for error messages.
    """
    if preset not in presets:
        raise ValueError(f'{owner}: unknown preset {preset!r}; choose one of '
                         f'{sorted(presets)}')
    layout = copy.deepcopy(defaults)
    layout.update(copy.deepcopy(presets[preset] or {}))
    if dynamic:
        unknown = sorted(set(dynamic) - set(defaults))
        if unknown:
            raise ValueError(f'{owner}: unknown keys {unknown} in `dynamic`; '
                             f'allowed: {sorted(defaults)}')
        layout.update(copy.deepcopy(dynamic))
    num_stages = len(defaults['stages'])
    if len(layout['stages']) != num_stages:
        raise ValueError(f'{owner}: `stages` needs {num_stages} booleans, got '
                         f'{layout["stages"]!r}')
    if any(layout['stages']) or layout.get('stem') or layout.get(
            'downsample') or layout.get('last_conv'):
        if not isinstance(layout['conv_cfg'], dict) or \
                'type' not in layout['conv_cfg']:
            raise ValueError(f'{owner}: a dynamic layout needs `conv_cfg` '
                             'with a `type`, e.g. dict(type="ODConv2d")')
    return layout


def make_dynamic(conv: nn.Module, conv_cfg: dict,
                 norm_cfg: Optional[dict]) -> nn.Module:
    """Build a conv of type ``conv_cfg`` with the geometry of ``conv``.

    An ``ODConv2d`` without its own ``norm_cfg`` takes the backbone's when
    that is a batch norm (BN, SyncBN, ...), so a SyncBN backbone also
    synchronises the attention statistics. Other norms (e.g. GN, whose group
    count need not divide the attention's 16+ channels) leave the attention
    with its default BN; set ``conv_cfg.norm_cfg`` to choose otherwise.
    """
    check_conv_type(conv_cfg)
    cfg = copy.deepcopy(conv_cfg)
    if (cfg['type'] == 'ODConv2d' and 'norm_cfg' not in cfg and norm_cfg
            and 'BN' in norm_cfg['type']):
        cfg['norm_cfg'] = copy.deepcopy(norm_cfg)
    return build_conv_layer(
        cfg,
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None)
