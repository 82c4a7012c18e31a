# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Checkpoint layouts -> backbone keys, one module per layout."""
from .base import (ARCHS, KeyMap, find_key_map, non_tensor_entries,
                   register_key_map, registered_key_maps,
                   to_backbone_state_dict)
from .fdconv import convert_fdconv_state_dict, is_fdconv_state_dict
from .kernel_warehouse import (RELEASE_ARGS,
                               convert_kernel_warehouse_state_dict,
                               is_kernel_warehouse_state_dict)
from .mmdet_csp import CSP_ARCHS, convert_mmdet_csp_state_dict
from .mmpretrain import convert_mmpretrain_state_dict
from .mobilenet_v2_names import MBV2_ARCH, mobilenet_v2_block_names
from .official import convert_official_state_dict
from .releases import (FDCONV_RELEASE, KW_RELEASE, ODCONV_RELEASE,
                       RELEASE_KEY_MAPS, Release, recognise_release)

__all__ = [
    'ARCHS', 'KeyMap', 'find_key_map', 'registered_key_maps',
    'non_tensor_entries', 'register_key_map', 'to_backbone_state_dict',
    'convert_mmpretrain_state_dict', 'convert_official_state_dict',
    'MBV2_ARCH', 'mobilenet_v2_block_names', 'CSP_ARCHS',
    'convert_mmdet_csp_state_dict', 'RELEASE_ARGS',
    'convert_kernel_warehouse_state_dict', 'is_kernel_warehouse_state_dict',
    'Release', 'ODCONV_RELEASE', 'KW_RELEASE', 'FDCONV_RELEASE',
    'RELEASE_KEY_MAPS', 'recognise_release', 'convert_fdconv_state_dict',
    'is_fdconv_state_dict'
]
