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
* KernelWarehouse (``kw1d4x`` ... ``kw4x``, Li and Yao, ICML 2024): the
  release's json settings and layouts (``docs/kernel_warehouse.md``); the
  warehouse assignment belongs to ``KWConv2d``; the release's names of the
  convs of mmdet's ResNet and MobileNetV2 (module path -> e.g.
  ``stage2_layer3_conv1``), from which it derives the warehouses, are
  here (:data:`KW_RELEASE_NAMES`).
* FDConv (``fdconv``, Chen et al., CVPR 2025): the release's ResNet
  (``ResNet_FDConv`` with its detection configs' ``kernel_num=64``): every
  block conv (conv1 / conv2 / conv3; stride-2 convs too, as the release
  converts them), stem and downsample dense; ResNet-50: 27,155,152
  backbone parameters (23,508,032 + 3,647,120, counted with the release's
  code). MobileNetV2, CSPNeXt, CSPDarknet and ResNet-18/34 take the same
  config on every conv of the other presets' layouts, and ``FDConv2d``
  itself keeps the convs dense that the release's rules leave dense:
  ``min(C_in, C_out) <= 16``, kernel sizes other than 1 and 3, and (ours,
  where the release fails) grouped and depthwise convs. No published count
  pins those layouts.
"""
import copy
import re
from typing import Dict, Optional

import torch.nn as nn
from mmcv.cnn import build_conv_layer

from ..layers import DynamicConv2d
from ..layers.conv_types import check_conv_type, get_conv_class
from ..layers.kernel_warehouse import ReleaseNamer, register_release_namer


def _kw(cell_num_ratio: float, cell_plane_ratio=1.0, **kwargs) -> dict:
    """A ``KWConv2d`` config with the release's json settings (reduction
    1/16, in- and out-plane cell ratios equal)."""
    return dict(
        type='KWConv2d',
        reduction=kwargs.pop('reduction', 1 / 16),
        cell_num_ratio=cell_num_ratio,
        cell_inplane_ratio=cell_plane_ratio,
        cell_outplane_ratio=cell_plane_ratio,
        **kwargs)


def _kw_resnet(cell_num_ratio: float,
               cell_plane_ratio: float = 1.0,
               bottleneck_basis: float = 1.0) -> dict:
    """KernelWarehouse ResNet (``kw_resnet.py``, ``configs/resnet*/*.json``):
    every block conv and the downsample of stride-2 blocks, one warehouse
    per stage (the json's sharing range); a Bottleneck ResNet keeps its
    first ``conv1`` static and uses the non-local basis ``bottleneck_basis``
    (ResNet-50 1/2x: 1/16)."""
    bottleneck = dict(static=('layer1.0.conv1', ))
    if bottleneck_basis < 1:
        bottleneck['conv_cfg'] = dict(nonlocal_basis_ratio=bottleneck_basis)
    return dict(
        conv_cfg=_kw(
            cell_num_ratio, cell_plane_ratio, sharing_range=('layer', 'conv')),
        stages=(True, ) * 4,
        downsample='strided',
        variants=dict(Bottleneck=bottleneck))


def _kw_mobilenet_v2(cell_num_ratio, sharing_range, **kwargs) -> dict:
    """KernelWarehouse MobileNetV2 (``kw_mobilenetv2.py``): every conv, the
    stem and the last 1x1 conv included."""
    static = kwargs.pop('static', ())
    return dict(
        conv_cfg=_kw(cell_num_ratio, sharing_range=sharing_range, **kwargs),
        stages=(True, ) * 7,
        stem=True,
        last_conv=True,
        static=static)


#: MobileNetV2 1/2x (``kw1d2x_mobilenetv2.py``): ratios per warehouse (stem,
#: depthwise of stages 1-5, stage 6 expand / depthwise / linear), reduction
#: 1/32, static pointwise convs in the blocks of KW stages 1-5.
_KW1D2X_MBV2 = (1, 1, 1, 1, 1, 1, 0.5, 1, 0.5)
_KW1D2X_EXTRA = dict(
    cell_plane_ratio=_KW1D2X_MBV2,
    reduction=1 / 32,
    static=('layer[1-5].*.expand_conv.conv', 'layer[1-5].*.linear_conv.conv',
            'layer6.0.expand_conv.conv', 'layer6.0.linear_conv.conv'))

#: ``DynamicResNet`` presets: name -> layout (see ``DynamicResNet``).
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
    'kw1d4x':
    _kw_resnet(1 / 4, 1 / 2, bottleneck_basis=1 / 16),
    'kw1d2x':
    _kw_resnet(1 / 2, 1 / 2, bottleneck_basis=1 / 16),
    'kw1x':
    _kw_resnet(1),
    'kw2x':
    _kw_resnet(2),
    'kw4x':
    _kw_resnet(4),
    'fdconv':
    dict(
        conv_cfg=dict(type='FDConv2d', kernel_num=64),
        stages=(True, ) * 4,
        downsample=False),
}

#: ``DynamicMobileNetV2`` presets: name -> layout.
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
    'kw1d2x':
    _kw_mobilenet_v2(_KW1D2X_MBV2, ('layer', ), **_KW1D2X_EXTRA),
    'kw1x':
    _kw_mobilenet_v2(1, ('layer', 'pwconv')),
    'kw4x':
    _kw_mobilenet_v2(4, ('layer', )),
    'fdconv':
    dict(
        conv_cfg=dict(type='FDConv2d', kernel_num=64),
        stages=(True, ) * 7,
        last_conv=True),
}

# The real-time CSP backbones follow the ODConv paper's MobileNetV2 rule for
# every family: every conv but the stem (4 stages written for P5; a P6
# backbone repeats a uniform ``stages`` over its 5). No published count pins
# these layouts.

#: ``DynamicCSPNeXt`` (RTMDet) presets: name -> layout.
CSPNEXT_PRESETS: Dict[str, Optional[dict]] = {
    'static':
    None,
    'dyconv4x':
    dict(conv_cfg=dict(type='DyConv2d', kernel_num=4), stages=(True, ) * 4),
    'odconv1x':
    dict(conv_cfg=dict(type='ODConv2d', kernel_num=1), stages=(True, ) * 4),
    'odconv4x':
    dict(conv_cfg=dict(type='ODConv2d', kernel_num=4), stages=(True, ) * 4),
    'fdconv':
    dict(conv_cfg=dict(type='FDConv2d', kernel_num=64), stages=(True, ) * 4),
}

#: ``DynamicCSPDarknet`` (YOLOX) presets: name -> layout.
CSP_DARKNET_PRESETS: Dict[str, Optional[dict]] = {
    'static':
    None,
    'dyconv4x':
    dict(conv_cfg=dict(type='DyConv2d', kernel_num=4), stages=(True, ) * 4),
    'odconv1x':
    dict(conv_cfg=dict(type='ODConv2d', kernel_num=1), stages=(True, ) * 4),
    'odconv4x':
    dict(conv_cfg=dict(type='ODConv2d', kernel_num=4), stages=(True, ) * 4),
    'fdconv':
    dict(conv_cfg=dict(type='FDConv2d', kernel_num=64), stages=(True, ) * 4),
}


def _apply_overrides(layout: dict, overrides: dict,
                     variant: Optional[str]) -> None:
    """Update ``layout`` with ``overrides``, then with its ``variants``
    entry for ``variant`` (whose ``conv_cfg`` keys update the layout's)."""
    overrides = copy.deepcopy(overrides)
    variants = overrides.pop('variants', None) or {}
    layout.update(overrides)
    special = copy.deepcopy(variants.get(variant) or {})
    if isinstance(special.get('conv_cfg'), dict) and isinstance(
            layout.get('conv_cfg'), dict):
        layout['conv_cfg'].update(special.pop('conv_cfg'))
    layout.update(special)


def resolve_layout(presets: Dict[str, Optional[dict]],
                   preset: str,
                   dynamic: Optional[dict],
                   defaults: dict,
                   owner: str,
                   variant: Optional[str] = None) -> dict:
    """Merge a preset with user overrides into a complete layout dict.

    Args:
        presets: Preset table.
        preset: Preset name.
        dynamic: Overrides of any layout field (``conv_cfg``, ...).
        defaults: Every layout field with its static default.
        owner: Class name, for error messages.
        variant: The backbone's variant (e.g. its ResNet block type): a
            preset's or ``dynamic``'s ``variants[variant]`` overrides their
            other fields (``conv_cfg`` key by key).
    """
    if preset not in presets:
        raise ValueError(f'{owner}: unknown preset {preset!r}; choose one of '
                         f'{sorted(presets)}')
    layout = copy.deepcopy(defaults)
    _apply_overrides(layout, presets[preset] or {}, variant)
    if dynamic:
        unknown = sorted(set(dynamic) - set(defaults))
        if unknown:
            raise ValueError(f'{owner}: unknown keys {unknown} in `dynamic`; '
                             f'allowed: {sorted(defaults)}')
        _apply_overrides(layout, dynamic, variant)
    layout.pop('variants', None)
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

    A dynamic conv family adapts the config to the backbone first
    (:meth:`~dynconv_mmdet.models.layers.DynamicConv2d.backbone_conv_cfg`:
    e.g. ODConv's attention takes the backbone's batch norm).
    """
    check_conv_type(conv_cfg)
    cfg = copy.deepcopy(conv_cfg)
    cls = get_conv_class(cfg['type'])
    if isinstance(cls, type) and issubclass(cls, DynamicConv2d):
        cfg = cls.backbone_conv_cfg(cfg, norm_cfg)
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


# ----------------------------------------------------------------------
# KernelWarehouse: the release's conv names of mmdet's module paths (the
# layer knows no module paths; it asks the namer registered for its owner's
# ``pretrained_arch``)
def _resnet_release_name(owner: nn.Module, path: str) -> Optional[str]:
    """``stage{s}_layer{l}_conv{c}`` of ``kw_resnet.py`` for a conv of an
    mmdet ResNet (``layer{i}.{b}.conv{j}`` / ``layer{i}.{b}.downsample.0``).

    The first block of a stage hands over: its ``conv1`` and its downsample
    draw from the previous stage's warehouse (a BasicBlock's first
    ``conv1`` of stage 0 stays in stage 0; a Bottleneck's is ``stage-1``,
    static in the release). ``l`` counts the blocks as the release does.
    """
    match = re.fullmatch(r'layer(\d+)\.(\d+)\.(conv(\d)|downsample\.0)', path)
    if match is None:
        return None
    stage, block = int(match.group(1)) - 1, int(match.group(2))
    # the release's layer counter at the first block of this stage
    first = len(owner.get_submodule(f'layer{stage}')) if stage > 0 else 0
    if match.group(4) is None:  # downsample
        return f'stage{stage - 1}_layer{first + 1}_conv0'
    position = int(match.group(4)) - 1
    if block > 0:
        return f'stage{stage}_layer{block}_conv{position}'
    if position == 0:
        bottleneck = hasattr(owner.get_submodule('layer1.0'), 'conv3')
        previous = stage - 1 if bottleneck else max(stage - 1, 0)
        return f'stage{previous}_layer{first}_conv0'
    return f'stage{stage}_layer0_conv{position}'


#: KW stage of each MobileNetV2 layer (``kw_mobilenetv2.py``): layers 6 and
#: 7 share stage 6.
_MOBILENET_V2_KW_STAGES = (1, 2, 3, 4, 5, 6, 6)
_MOBILENET_V2_CONVS = dict(
    expand_conv='pwconv0', depthwise_conv='dwconv0', linear_conv='pwconv1')


def _mobilenet_v2_release_name(owner: nn.Module, path: str) -> Optional[str]:
    """``stage{s}_layer{l}_{pw|dw}conv{c}`` of ``kw_mobilenetv2.py`` for a
    conv of mmdet's MobileNetV2 (``conv1.conv``, ``layer{i}.{b}.
    {expand,depthwise,linear}_conv.conv``, ``conv2.conv``).

    The first block of a layer that starts a new KW stage belongs to the
    previous stage (hand-over of a whole block); ``l`` counts the blocks as
    the release does (reset after each hand-over).
    """
    if path == 'conv1.conv':
        return 'stage0_conv0'
    stages = _MOBILENET_V2_KW_STAGES
    counter, names = 0, {}
    for i, kw_stage in enumerate(stages):
        for b in range(len(owner.get_submodule(f'layer{i + 1}'))):
            handover = b == 0 and i > 0 and kw_stage != stages[i - 1]
            names[(i + 1, b)] = (kw_stage - 1 if handover else kw_stage,
                                 counter)
            counter = 0 if handover else counter + 1
    if path == 'conv2.conv':
        return f'stage{stages[-1]}_layer{counter}_pwconv1'
    match = re.fullmatch(r'layer(\d+)\.(\d+)\.(\w+_conv)\.conv', path)
    if match is None or match.group(3) not in _MOBILENET_V2_CONVS:
        return None
    stage, layer = names[(int(match.group(1)), int(match.group(2)))]
    return f'stage{stage}_layer{layer}_{_MOBILENET_V2_CONVS[match.group(3)]}'


#: ``pretrained_arch`` of a backbone -> the KernelWarehouse release's name
#: of a conv path (registered with the layer's warehouse planner).
KW_RELEASE_NAMES: Dict[str, ReleaseNamer] = {
    'resnet': _resnet_release_name,
    'mobilenet_v2': _mobilenet_v2_release_name,
}
for _arch, _namer in KW_RELEASE_NAMES.items():
    register_release_namer(_arch, _namer)
