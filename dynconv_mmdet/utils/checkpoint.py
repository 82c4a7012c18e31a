# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Deprecated: safe checkpoint reading lives in
:mod:`dynconv_mmdet.checkpoint` (:mod:`dynconv_mmdet.checkpoint.reader`)."""
from ..checkpoint.moved import moved_names

__getattr__ = moved_names(__name__,
                          ('CheckpointError', 'mmengine_checkpoint_globals',
                           'register_safe_globals', 'safe_torch_load'))
