# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Models that hold our backbones refuse weights that do not fit them.

mmdet's inference entry points (``DetInferencer``, ``init_detector``) and
mmengine's ``Pretrained`` init load a checkpoint with ``strict=False``: the
weights of another preset or class count leave part of the detector random,
with a warning, and the boxes it then draws look like results. Importing
``dynconv_mmdet`` calls :func:`install_load_guard`: from then on, every
module that receives one of our backbones as a child (the detector, a
classifier) checks a state dict given to it, through any loader (mmengine's
recursive ``load_state_dict`` included), against its own keys and shapes,
and raises :class:`~.errors.CheckpointMismatchError` listing what does not
fit instead of loading half of it.

The opt-outs, for the rare load that is meant to be partial:

* ``DYNCONV_PARTIAL_LOAD=1`` in the environment (any entry point);
* ``with dynconv_mmdet.checkpoint.partial_loading(): ...`` in code;
* our tools' ``--partial-load`` and the configs' ``strict_load = False``,
  which use the latter.
"""
from typing import Any, Dict, List, Optional

import torch.nn as nn
from torch.nn.modules.module import register_module_module_registration_hook
from torch.utils.hooks import RemovableHandle

from .errors import CheckpointMismatchError
from .model import compare_state_dict
from .partial import PARTIAL_LOAD_ENV, partial_loading_allowed
from .report import format_mismatch

#: Attribute a module class sets to make its parent module guarded.
GUARD_ATTRIBUTE = 'guards_parent_load'

GUARD_HINT = (
    'Check that the weights were trained with this config (same preset / '
    'kernel number, depth or width, number of classes). To load only the '
    'weights that fit, on purpose: set the environment variable '
    f'{PARTIAL_LOAD_ENV}=1, or load inside `with dynconv_mmdet.checkpoint.'
    'partial_loading():`, or pass --partial-load to tools/test.py / '
    'tools/image_demo.py (training: `strict_load = False` in the config).')

_handle: Optional[RemovableHandle] = None


def check_state_dict_fits(module: nn.Module, state_dict: Dict[str, Any],
                          prefix: str, local_metadata: dict, strict: bool,
                          missing_keys: List[str], unexpected_keys: List[str],
                          error_msgs: List[str]) -> None:
    """Load-state-dict pre-hook: refuse entries that do not fit ``module``.

    Takes the arguments torch gives a pre-hook registered ``with_module``
    (the module, the whole state dict, the module's key prefix, ...); only
    the entries under ``prefix`` are compared.

    Raises:
        CheckpointMismatchError: Missing, unexpected or mis-shaped keys,
            unless :func:`partial_loading_allowed`.
    """
    if partial_loading_allowed():
        return
    own = {
        key[len(prefix):]: value
        for key, value in state_dict.items() if key.startswith(prefix)
    }
    _, report = compare_state_dict(module, own)
    if not report.fits:
        raise CheckpointMismatchError(
            format_mismatch(report, 'being loaded',
                            f'the model ({type(module).__name__})',
                            GUARD_HINT))


def _guard_parent(module: nn.Module, name: str,
                  submodule: Optional[nn.Module]) -> None:
    """Module-registration hook: guard the parent of a guarding child."""
    # class attributes only: the parent may be a wrapper whose instance
    # attribute lookup is not ready while its child is being set
    # (``torch.compile``'s module delegates every lookup to that child)
    if submodule is None or not getattr(
            type(submodule), GUARD_ATTRIBUTE, False):
        return
    if getattr(type(module), GUARD_ATTRIBUTE, False) or module.__dict__.get(
            '_dynconv_load_guarded', False):
        return
    module._register_load_state_dict_pre_hook(
        check_state_dict_fits, with_module=True)
    module.__dict__['_dynconv_load_guarded'] = True


def install_load_guard() -> None:
    """Guard every module that receives a child whose class sets
    :data:`GUARD_ATTRIBUTE` (idempotent)."""
    global _handle
    if _handle is None:
        _handle = register_module_module_registration_hook(_guard_parent)
