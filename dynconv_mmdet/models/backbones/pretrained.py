"""Loading ImageNet weights into a dynamic backbone, loudly.

mmengine's ``Pretrained`` init loads with ``strict=False`` and only warns, so
a wrong file silently trains from a random start. Our backbones take a
``Pretrained`` ``init_cfg`` themselves and call :func:`load_pretrained`:

* the file is read with ``weights_only=True``;
* official ODConv, torchvision and mmpretrain/mmdet layouts are converted;
* a dense conv weight ``[C_out, C_in/g, kh, kw]`` meeting a dynamic conv
  ``[K, C_out, C_in/g, kh, kw]`` initialises every kernel/expert with the
  dense weight (the attention keeps its own init) and is reported;
* any other missing, unexpected or mis-shaped key is an error listing them,
  unless the backbone was built with ``strict_pretrained=False``.
"""
import os
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.runner.checkpoint import (get_external_models,
                                        get_torchvision_models)
from torch import Tensor

from ...utils.checkpoint import CheckpointError, safe_torch_load
from ..layers import DynamicConv2d
from .conversion import strip_prefix, to_backbone_state_dict

StateDict = Dict[str, Tensor]


class CheckpointMismatchError(CheckpointError):
    """A checkpoint whose keys or shapes do not fit the backbone."""


class LoadReport(NamedTuple):
    """What :func:`load_pretrained` did."""
    loaded: List[str]
    expanded: List[str]
    kept_init: List[str]
    missing: List[str]
    unexpected: List[str]
    mismatched: List[Tuple[str, tuple, tuple]]


def resolve_checkpoint_path(checkpoint: str) -> str:
    """Local path for ``checkpoint`` (downloads URLs into torch's hub cache).

    Accepts a local path, ``http(s)://``, ``torchvision://NAME`` and
    ``open-mmlab://NAME``.
    """
    if checkpoint.startswith('torchvision://'):
        name = checkpoint[len('torchvision://'):]
        checkpoint = get_torchvision_models()[name]
    elif checkpoint.startswith('open-mmlab://'):
        name = checkpoint[len('open-mmlab://'):]
        checkpoint = get_external_models()[name]
    if checkpoint.startswith(('http://', 'https://')):
        cache = osp.join(torch.hub.get_dir(), 'checkpoints')
        os.makedirs(cache, exist_ok=True)
        local = osp.join(cache, osp.basename(checkpoint.split('?')[0]))
        if not osp.isfile(local):
            torch.hub.download_url_to_file(checkpoint, local)
        return local
    return checkpoint


def extract_state_dict(ckpt: dict, source: str) -> StateDict:
    """The weights of a checkpoint dict (``state_dict``/``model`` or flat)."""
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
            break
    if not ckpt or not all(isinstance(v, Tensor) for v in ckpt.values()):
        raise CheckpointError(
            f'{source} holds no state_dict of tensors (looked for '
            "'state_dict', 'model' or a flat dict of tensors)")
    return ckpt


def _format_mismatch(report: LoadReport, source: str) -> str:
    lines = [f'checkpoint {source} does not fit the backbone:']

    def section(title: str, items: list) -> None:
        if items:
            lines.append(f'  {title} ({len(items)}):')
            lines.extend(f'    {item}' for item in items[:20])
            if len(items) > 20:
                lines.append(f'    ... and {len(items) - 20} more')

    section('missing in the checkpoint', report.missing)
    section('unexpected in the checkpoint', report.unexpected)
    section(
        'shape mismatch (key: checkpoint vs model)',
        [f'{k}: {tuple(a)} vs {tuple(b)}' for k, a, b in report.mismatched])
    lines.append('Check that the checkpoint matches the backbone (depth, '
                 'widen_factor, preset / kernel number), or build the '
                 'backbone with strict_pretrained=False to load only what '
                 'fits.')
    return '\n'.join(lines)


def match_state_dict(model: nn.Module,
                     state_dict: StateDict) -> Tuple[StateDict, LoadReport]:
    """Fit ``state_dict`` to ``model`` (dense-to-dynamic expansion).

    Returns the dict to load (model keys only) and a report. Keys of the model
    that the checkpoint lacks keep their current value only where that is
    expected: the attention/routing of a dynamic conv initialised from a dense
    weight, and BatchNorm ``num_batches_tracked`` counters.
    """
    target = model.state_dict()
    modules = dict(model.named_modules())
    out: StateDict = {}
    loaded, expanded, unexpected, mismatched = [], [], [], []
    for key, value in state_dict.items():
        if key not in target:
            unexpected.append(key)
            continue
        want = target[key]
        if value.shape == want.shape:
            out[key] = value.to(want.dtype)
            loaded.append(key)
            continue
        owner = modules.get(key.rsplit('.', 1)[0])
        if (key.endswith('.weight') and isinstance(owner, DynamicConv2d)
                and owner.weight.shape[1:] == value.shape):
            out[key] = value.to(
                want.dtype).unsqueeze(0).expand_as(want).clone()
            expanded.append(key)
            continue
        mismatched.append((key, tuple(value.shape), tuple(want.shape)))
    dense_owners = tuple(k[:-len('weight')] for k in expanded)
    mismatched_keys = {m[0] for m in mismatched}
    kept_init, missing = [], []
    for key, value in target.items():
        if key in out:
            continue
        own_init = bool(dense_owners) and key.startswith(dense_owners)
        if own_init or key.endswith('num_batches_tracked'):
            out[key] = value
            kept_init.append(key)
        elif key not in mismatched_keys:
            missing.append(key)
    return out, LoadReport(loaded, expanded, kept_init, missing, unexpected,
                           mismatched)


def load_pretrained(model: nn.Module,
                    checkpoint: str,
                    arch: str,
                    prefix: Optional[str] = None,
                    strict: bool = True,
                    logger: Optional[MMLogger] = None) -> LoadReport:
    """Load ImageNet weights into a (dynamic) backbone.

    Args:
        model: The backbone.
        checkpoint: Path or URL (see :func:`resolve_checkpoint_path`).
        arch: ``'resnet'`` or ``'mobilenet_v2'`` (selects the conversion).
        prefix: Only use keys under this prefix (e.g. ``'backbone.'``).
        strict: Raise :class:`CheckpointMismatchError` on any mismatch.

    Returns:
        LoadReport: Loaded, dense-expanded and kept keys, and mismatches.
    """
    path = resolve_checkpoint_path(checkpoint)
    state_dict = extract_state_dict(safe_torch_load(path), checkpoint)
    if prefix:
        state_dict = {
            k: v
            for k, v in strip_prefix(state_dict, 'module.').items()
            if k.startswith(prefix)
        }
        if not state_dict:
            raise CheckpointMismatchError(
                f'checkpoint {checkpoint} has no key under prefix {prefix!r}')
        state_dict = strip_prefix(state_dict, prefix)
    try:
        state_dict = to_backbone_state_dict(state_dict, arch)
    except KeyError as err:
        raise CheckpointMismatchError(
            f'checkpoint {checkpoint}: {err.args[0]}') from err
    to_load, report = match_state_dict(model, state_dict)
    bad = report.missing or report.unexpected or report.mismatched
    if bad and strict:
        raise CheckpointMismatchError(_format_mismatch(report, checkpoint))
    if bad:
        print_log(
            _format_mismatch(report, checkpoint) +
            '\nstrict_pretrained=False: loading the keys that fit.',
            logger=logger or 'current',
            level=30)
    model.load_state_dict(to_load, strict=not bad)
    if report.expanded:
        print_log(
            f'{checkpoint}: initialised {len(report.expanded)} dynamic convs '
            'from dense weights (every kernel/expert = the dense kernel; '
            'attention from its own init)',
            logger=logger or 'current')
    print_log(
        f'loaded {len(report.loaded) + len(report.expanded)} tensors from '
        f'{checkpoint}',
        logger=logger or 'current')
    return report
