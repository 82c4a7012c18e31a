# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Backbone weights of mmdet's CSPNeXt (RTMDet) and CSPDarknet (YOLOX).

Our dynamic CSP backbones keep mmdet's module names (``stem.*``,
``stage<N>.*``), so the weights load as they are: RTMDet's ImageNet
``cspnext-*`` checkpoints (mmpretrain classifiers) after the
``mmpretrain / mmdet model`` layout or a ``prefix='backbone.'`` removed the
``backbone.`` prefix, or a backbone's own ``state_dict()``. Any other key
(a classifier head left in, another network) is refused, listed.
"""
import re

from ..keys import StateDict, raise_unknown_keys
from .base import KeyMap, register_key_map

#: ``pretrained_arch`` of the backbones this layout serves.
CSP_ARCHS = ('cspnext', 'csp_darknet')

_CSP_KEY = re.compile(r'^(stem|stage\d+)\.')


def convert_mmdet_csp_state_dict(state_dict: StateDict,
                                 arch: str) -> StateDict:
    """Check that every key is a CSP backbone key; return them unchanged.

    Raises:
        KeyError: Keys outside ``stem.`` / ``stage<N>.``, listed.
    """
    raise_unknown_keys([k for k in state_dict if not _CSP_KEY.match(k)],
                       f'an mmdet {arch} backbone')
    return dict(state_dict)


MMDET_CSP = register_key_map(
    KeyMap(
        name='mmdet CSPNeXt / CSPDarknet backbone',
        recognises=lambda state_dict, arch: arch in CSP_ARCHS,
        to_backbone=convert_mmdet_csp_state_dict,
        priority=10))
