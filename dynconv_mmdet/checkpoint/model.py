# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Loading a whole model (detector, classifier) checkpoint, strictly.

mmengine loads ``load_from`` / ``--resume`` / ``tools/test.py`` checkpoints
with ``strict=False``: weights of another preset load "with warnings" and
the evaluation reports meaningless numbers. Here a checkpoint must fit the
model exactly (a missing ``num_batches_tracked`` counter aside); otherwise
the missing, unexpected and mis-shaped keys are listed and nothing is
loaded, unless the caller opts out (``strict=False``: the keys that fit are
loaded, the rest is logged as a warning).
"""
import re
from collections import OrderedDict
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from torch import Tensor

from .errors import CheckpointError, CheckpointMismatchError
from .keys import strip_prefix
from .partial import partial_loading
from .reader import read_checkpoint
from .report import LoadReport, format_mismatch

StateDict = Dict[str, Tensor]

#: The hint of a whole-model mismatch.
MODEL_HINT = (
    'Check that the checkpoint was trained with this config (same preset / '
    'kernel number, depth or width, number of classes). To load only the '
    'weights that fit, pass --partial-load to tools/test.py or '
    'tools/image_demo.py, or set `strict_load = False` in the config.')


def compare_state_dict(model: nn.Module,
                       state_dict: StateDict) -> Tuple[StateDict, LoadReport]:
    """What of ``state_dict`` fits ``model`` exactly.

    Returns:
        tuple: The entries that fit (an ``OrderedDict`` that keeps the
        checkpoint's ``_metadata``) and a :class:`LoadReport` (``expanded``
        is always empty: a whole model is not expanded).
    """
    target = model.state_dict()
    fit: StateDict = OrderedDict()
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        fit._metadata = metadata
    loaded, unexpected, mismatched = [], [], []
    for key, value in state_dict.items():
        want = target.get(key)
        if want is None:
            unexpected.append(key)
        elif not isinstance(value, Tensor) or value.shape != want.shape:
            shape = tuple(value.shape) if isinstance(
                value, Tensor) else (type(value).__name__, )
            mismatched.append((key, shape, tuple(want.shape)))
        else:
            fit[key] = value
            loaded.append(key)
    mismatched_keys = {m[0] for m in mismatched}
    kept, missing = [], []
    for key in target:
        if key in fit or key in mismatched_keys:
            continue
        (kept if key.endswith('num_batches_tracked') else missing).append(key)
    return fit, LoadReport(loaded, [], kept, missing, unexpected, mismatched)


def load_state_dict_checked(model: nn.Module,
                            state_dict: StateDict,
                            strict: bool = True,
                            source: str = 'the checkpoint',
                            logger: Optional[MMLogger] = None,
                            hint: str = MODEL_HINT) -> LoadReport:
    """Load ``state_dict`` into ``model``; refuse it if it does not fit.

    Args:
        model (nn.Module): The model (not a wrapper).
        state_dict (dict): Model keys.
        strict (bool): Raise on any mismatch (nothing is loaded then);
            ``False`` loads the entries that fit and logs the rest.
        source (str): The checkpoint's name, for messages.
        logger (MMLogger, optional): Where to log.
        hint (str): What the error message advises.

    Raises:
        CheckpointMismatchError: With ``strict``, listing the missing,
            unexpected and mis-shaped keys.
    """
    fit, report = compare_state_dict(model, state_dict)
    if not report.fits:
        message = format_mismatch(report, source, 'the model', hint)
        if strict:
            raise CheckpointMismatchError(message)
        print_log(
            message + '\nPartial loading was asked for: loading the '
            f'{len(report.loaded)} tensors that fit.',
            logger=logger or 'current',
            level=30)
    # checked above: the guard of models holding our backbones (.guard)
    # must not refuse the part asked for
    with partial_loading():
        model.load_state_dict(fit, strict=False)
    return report


def model_state_dict(
        checkpoint: Dict[str, Any],
        source: str,
        revise_keys: Optional[Sequence[Tuple[str, str]]] = None) -> StateDict:
    """The model weights of a checkpoint dict, ``module.`` removed.

    Args:
        checkpoint (dict): A checkpoint (``state_dict`` entry) or a flat
            state dict.
        source (str): The checkpoint's name, for messages.
        revise_keys (Sequence[tuple[str, str]], optional): ``(pattern,
            replacement)`` regular expressions applied to every key, as
            mmengine's ``revise_keys``; default: remove ``module.``.

    Raises:
        CheckpointError: If it holds no state dict of tensors.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict) or not state_dict:
        raise CheckpointError(f'{source} holds no state_dict')
    metadata = getattr(state_dict, '_metadata', None)
    if revise_keys is None:
        state_dict = strip_prefix(state_dict, 'module.')
    else:
        for pattern, replacement in revise_keys:
            state_dict = {
                re.sub(pattern, replacement, k): v
                for k, v in state_dict.items()
            }
    state_dict = OrderedDict(state_dict)
    if metadata is not None:
        state_dict._metadata = metadata
    return state_dict


def load_model_checkpoint(
        model: nn.Module,
        filename: str,
        strict: bool = True,
        map_location: Union[str, torch.device] = 'cpu',
        revise_keys: Optional[Sequence[Tuple[str, str]]] = None,
        logger: Optional[MMLogger] = None) -> Tuple[dict, LoadReport]:
    """Read ``filename`` safely and load it into ``model`` strictly.

    Args:
        model (nn.Module): The model (not a wrapper).
        filename (str): Local path, URL, ``torchvision://`` or
            ``open-mmlab://``.
        strict (bool): See :func:`load_state_dict_checked`.
        map_location (str | torch.device): Where tensors go.
        revise_keys: See :func:`model_state_dict`.
        logger (MMLogger, optional): Where to log.

    Returns:
        tuple: The checkpoint dict and the :class:`LoadReport`.
    """
    checkpoint = read_checkpoint(filename, map_location)
    report = load_state_dict_checked(
        model,
        model_state_dict(checkpoint, filename, revise_keys),
        strict=strict,
        source=filename,
        logger=logger)
    return checkpoint, report
