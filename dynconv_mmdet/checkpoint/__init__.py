# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Everything about checkpoints, in one place.

* :mod:`.reader`: safe reading (``weights_only=True``, always explicit),
  allow-listed mmengine objects, named non-tensor entries;
* :mod:`.keys`: the prefix helper and the unknown-key error;
* :mod:`.key_maps`: one module per checkpoint layout, mapping its keys to
  our backbones' (official ODConv / torchvision, official KernelWarehouse,
  official FDConv, mmpretrain / mmdet);
* :mod:`.backbone`: ImageNet weights into a dynamic backbone (dense starts
  asked of the conv family), strict by default; registered as the
  backbones' ``Pretrained`` loader (the models do not import this package:
  it imports them);
* :mod:`.released_detector`: the ODConv, KernelWarehouse and FDConv
  authors' MMDetection 2.x detectors;
* :mod:`.model`: a whole detector / classifier checkpoint, strict by
  default (used by :class:`~dynconv_mmdet.engine.runner.SafeLoadRunner`
  and the demo's :class:`~.inferencer.StrictDetInferencer`);
* :mod:`.guard`: models holding our backbones refuse weights that do not
  fit, through any loader (:mod:`.partial`: the opt-outs);
* :mod:`.convert`: the file conversions of ``tools/model_converters/``.
"""
from .backbone import load_pretrained, match_state_dict
from .convert import (convert_kw_official_backbone, convert_official_backbone,
                      convert_released_detector_file, export_backbone,
                      extract_backbone)
from .errors import CheckpointError, CheckpointMismatchError
from .guard import install_load_guard
from .key_maps import (KeyMap, convert_kernel_warehouse_state_dict,
                       convert_mmpretrain_state_dict,
                       convert_official_state_dict, find_key_map,
                       non_tensor_entries, register_key_map,
                       registered_key_maps, to_backbone_state_dict)
from .keys import raise_unknown_keys, strip_prefix
from .model import (compare_state_dict, load_model_checkpoint,
                    load_state_dict_checked, model_state_dict)
from .partial import PARTIAL_LOAD_ENV, partial_loading, partial_loading_allowed
from .reader import (NonTensorEntry, extract_state_dict,
                     mmengine_checkpoint_globals, read_checkpoint,
                     register_safe_globals, resolve_checkpoint_path,
                     safe_torch_load)
from .released_detector import (BACKBONE_ARCHS, CLASSIFIER_KEYS,
                                RELEASED_DETECTORS, RELEASES,
                                convert_released_detector,
                                released_detector_layout,
                                released_detector_release,
                                released_detector_type)
from .report import LoadReport, format_mismatch

__all__ = [
    'CheckpointError', 'CheckpointMismatchError', 'NonTensorEntry',
    'safe_torch_load', 'read_checkpoint', 'register_safe_globals',
    'mmengine_checkpoint_globals', 'resolve_checkpoint_path',
    'extract_state_dict', 'strip_prefix', 'raise_unknown_keys', 'KeyMap',
    'register_key_map', 'registered_key_maps', 'find_key_map',
    'non_tensor_entries', 'to_backbone_state_dict',
    'convert_official_state_dict', 'convert_mmpretrain_state_dict',
    'LoadReport', 'format_mismatch', 'match_state_dict', 'load_pretrained',
    'BACKBONE_ARCHS', 'CLASSIFIER_KEYS', 'convert_released_detector',
    'released_detector_type', 'compare_state_dict', 'load_state_dict_checked',
    'model_state_dict', 'load_model_checkpoint', 'convert_official_backbone',
    'convert_released_detector_file', 'extract_backbone', 'export_backbone',
    'convert_kernel_warehouse_state_dict', 'convert_kw_official_backbone',
    'RELEASED_DETECTORS', 'RELEASES', 'released_detector_layout',
    'released_detector_release', 'install_load_guard', 'PARTIAL_LOAD_ENV',
    'partial_loading', 'partial_loading_allowed'
]
