# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Deprecated: loading into backbones lives in
:mod:`dynconv_mmdet.checkpoint` (:mod:`dynconv_mmdet.checkpoint.backbone`)."""
from ...checkpoint.moved import moved_names

__getattr__ = moved_names(
    __name__,
    ('CheckpointMismatchError', 'LoadReport', 'extract_state_dict',
     'load_pretrained', 'match_state_dict', 'resolve_checkpoint_path'))
