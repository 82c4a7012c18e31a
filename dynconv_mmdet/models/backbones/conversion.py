# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Deprecated: key conversions live in
:mod:`dynconv_mmdet.checkpoint.key_maps` (one module per layout)."""
from ...checkpoint.moved import moved_names

__getattr__ = moved_names(
    __name__, ('MBV2_ARCH', 'convert_mmpretrain_state_dict',
               'convert_official_state_dict', 'mobilenet_v2_block_names',
               'strip_prefix', 'to_backbone_state_dict'),
    'dynconv_mmdet.checkpoint.key_maps')
