# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""mmpretrain / mmdet checkpoints, and backbone files with mmdet names.

* whole mmpretrain classifiers (the classification project) and mmdet
  detectors: the ``backbone.`` entries are kept (prefix removed), the rest
  (``neck.``, ``head.``, ``data_preprocessor.`` ...) is dropped;
* backbone-only files (``tools/model_converters/*``, or a backbone's own
  ``state_dict()``) of MobileNetV2; ResNet backbone files have torchvision's
  names and take the official layout.

mmpretrain names MobileNetV2 convs ``layerX.Y.conv.N``; they become mmdet's
``expand_conv`` / ``depthwise_conv`` / ``linear_conv``.
"""
import re

from ...utils.formatting import format_listing
from ..keys import StateDict, strip_prefix
from .base import KeyMap, register_key_map
from .mobilenet_v2_names import MBV2_ARCH, mbv2_units


def _mmpretrain_mbv2_key(key: str) -> str:
    """mmpretrain's ``layerX.Y.conv.N.`` MobileNetV2 names -> mmdet's."""
    match = re.match(r'^(layer(\d+)\.\d+)\.conv\.(\d+)\.(.*)$', key)
    if match is None:
        return key
    stage, pos = int(match.group(2)), int(match.group(3))
    if not 1 <= stage <= len(MBV2_ARCH):
        return key
    units = mbv2_units(MBV2_ARCH[stage - 1][0])
    if pos >= len(units):
        return key
    return f'{match.group(1)}.{units[pos]}.{match.group(4)}'


def convert_mmpretrain_state_dict(state_dict: StateDict,
                                  prefix: str = 'backbone.') -> StateDict:
    """mmpretrain / mmdet checkpoint -> backbone keys.

    Keeps the ``prefix`` entries (prefix removed) and drops the rest of
    the classifier or detector (``head.``, ``neck.``, ``data_preprocessor.``
    ...). A ``module.`` prefix is removed first.

    Raises:
        KeyError: If no key starts with ``prefix``.
    """
    state_dict = strip_prefix(state_dict, 'module.')
    out = strip_prefix(state_dict, prefix, only=True)
    if not out:
        raise KeyError(f'no key starts with {prefix!r} (keys: '
                       f'{format_listing(state_dict)}); is it an mmpretrain '
                       '/ mmdet model checkpoint?')
    return out


def _mbv2_names(state_dict: StateDict, arch: str) -> StateDict:
    if arch != 'mobilenet_v2':
        return state_dict
    return {_mmpretrain_mbv2_key(k): v for k, v in state_dict.items()}


MMPRETRAIN = register_key_map(
    KeyMap(
        name='mmpretrain / mmdet model',
        recognises=lambda state_dict, arch: any(
            k.startswith('backbone.') for k in state_dict),
        to_backbone=lambda state_dict, arch: _mbv2_names(
            convert_mmpretrain_state_dict(state_dict), arch),
        priority=20))

MMDET_BACKBONE = register_key_map(
    KeyMap(
        name='mmdet MobileNetV2 backbone',
        recognises=lambda state_dict, arch: arch == 'mobilenet_v2' and all(
            k.startswith(('conv1.', 'conv2.', 'layer')) for k in state_dict),
        to_backbone=_mbv2_names,
        priority=10))
