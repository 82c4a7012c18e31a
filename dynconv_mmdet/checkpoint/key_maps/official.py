# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Official ODConv releases and torchvision classification checkpoints.

* official ODConv releases (github OSVAI/ODConv): ``{'state_dict': ...}``
  with every key prefixed ``module.``; OD-ResNet keys are torchvision names,
  OD-MobileNetV2 keys are torchvision-style ``features.N...``;
* torchvision ResNet / MobileNetV2 ``state_dict`` files (dense).

ResNet keys are mmdet's already; MobileNetV2 ``features.N`` entries are
renamed to mmdet's ``layerX.Y.{expand,depthwise,linear}_conv``. The
classifier (``fc.*`` / ``classifier.*``) is dropped. This is the fallback
layout: it is asked last and raises on any key it does not know.
"""
import re

from ..keys import StateDict, raise_unknown_keys, strip_prefix
from .base import KeyMap, register_key_map
from .mobilenet_v2_names import mbv2_units, mobilenet_v2_block_names

_RESNET_KEY = re.compile(
    r'^(conv1\.|bn1\.|layer\d+\.\d+\.(conv\d|bn\d|downsample\.[01])\.'
    r'|warehouse_manager\.weights\.\d+$)')  # KernelWarehouse: same names
_CLASSIFIER_KEY = re.compile(r'^(fc|classifier)\.')
_ARCHS = ('resnet', 'mobilenet_v2')


def _mbv2_feature_key(key: str) -> str:
    """Map one torchvision-style ``features.`` key to mmdet's name."""
    match = re.match(r'^features\.(\d+)\.(.*)$', key)
    if match is None:
        raise KeyError(key)
    index, rest = int(match.group(1)), match.group(2)
    blocks = mobilenet_v2_block_names()
    if index in (0, len(blocks) + 1):
        module = 'conv1' if index == 0 else 'conv2'
        sub = re.match(r'^([01])\.(.*)$', rest)
        if sub is None:
            raise KeyError(key)
        return f'{module}.{("conv", "bn")[int(sub.group(1))]}.{sub.group(2)}'
    if not 1 <= index <= len(blocks):
        raise KeyError(key)
    block, expand = blocks[index - 1]
    units = mbv2_units(expand)
    # ConvBNReLU units are conv.<i>.{0,1}; the linear conv and its BN are
    # two plain entries at the end.
    last = len(units) - 1
    sub = re.match(r'^conv\.(\d+)\.(.*)$', rest)
    if sub is None:
        raise KeyError(key)
    pos, tail = int(sub.group(1)), sub.group(2)
    if pos < last:
        unit = re.match(r'^([01])\.(.*)$', tail)
        if unit is None:
            raise KeyError(key)
        part = ('conv', 'bn')[int(unit.group(1))]
        return f'{block}.{units[pos]}.{part}.{unit.group(2)}'
    if pos in (last, last + 1):
        part = 'conv' if pos == last else 'bn'
        return f'{block}.{units[last]}.{part}.{tail}'
    raise KeyError(key)


def convert_official_state_dict(state_dict: StateDict, arch: str) -> StateDict:
    """Official ODConv / torchvision classification keys -> backbone keys.

    Args:
        state_dict: Classification weights; a ``module.`` prefix is removed.
        arch: ``'resnet'`` or ``'mobilenet_v2'``.

    Returns:
        The backbone weights with mmdet key names; the classifier
        (``fc.*`` / ``classifier.*``) is dropped.

    Raises:
        KeyError: Keys that belong to neither the backbone nor the classifier.
        ValueError: Unknown ``arch``.
    """
    if arch not in _ARCHS:
        raise ValueError(f"arch must be 'resnet' or 'mobilenet_v2', got "
                         f'{arch!r}')
    out: StateDict = {}
    unknown = []
    for key, value in strip_prefix(state_dict, 'module.').items():
        if _CLASSIFIER_KEY.match(key):
            continue
        if arch == 'resnet':
            if _RESNET_KEY.match(key):
                out[key] = value
            else:
                unknown.append(key)
            continue
        try:
            out[_mbv2_feature_key(key)] = value
        except KeyError:
            unknown.append(key)
    raise_unknown_keys(unknown, f'an official {arch} classification model')
    return out


OFFICIAL = register_key_map(
    KeyMap(
        name='official ODConv / torchvision',
        recognises=lambda state_dict, arch: True,
        to_backbone=convert_official_state_dict,
        priority=0))
