# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Loading ImageNet weights into a dynamic backbone, loudly.

mmengine's ``Pretrained`` init loads with ``strict=False`` and only warns, so
a wrong file silently trains from a random start. Our backbones take a
``Pretrained`` ``init_cfg`` (or mmdet's ``pretrained=``) themselves and call
:func:`load_pretrained`:

* the file is read with ``weights_only=True``
  (:func:`~dynconv_mmdet.checkpoint.reader.safe_torch_load`);
* its layout (official ODConv, torchvision, mmpretrain/mmdet, ...) is
  recognised and its keys renamed by a registered key map
  (:mod:`dynconv_mmdet.checkpoint.key_maps`);
* a checkpoint weight that does not fit a dynamic conv as it is is offered
  to the conv's family (:meth:`~dynconv_mmdet.models.layers.DynamicConv2d.
  init_from_dense`): a dense ImageNet kernel starts every kernel/expert (the
  attention keeps its own init), and the start is reported;
* any other missing, unexpected or mis-shaped key, or a dense start the
  family refuses, is an error listing them, unless the backbone was built
  with ``strict_pretrained=False``.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Set, Tuple

import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from torch import Tensor

from ..models.backbones.pretrained_mixin import register_pretrained_loader
from ..models.layers import DynamicConv2d
from .errors import CheckpointMismatchError
from .key_maps import non_tensor_entries, to_backbone_state_dict
from .keys import strip_prefix
from .reader import extract_state_dict, read_checkpoint
from .report import LoadReport, format_mismatch

StateDict = Dict[str, Tensor]

_BACKBONE_HINT = ('Check that the checkpoint matches the backbone (depth, '
                  'widen_factor, preset / kernel number), or build the '
                  'backbone with strict_pretrained=False to load only what '
                  'fits.')


def _param_names(model: nn.Module) -> Dict[int, List[str]]:
    """``id(parameter) -> its state-dict names`` (shared ones: several)."""
    names: Dict[int, List[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    return names


def _kernels_only_keeps(modules: Dict[str, nn.Module],
                        loaded: StateDict) -> Tuple[str, ...]:
    """Key prefixes a kernels-only checkpoint leaves to the family's init:
    each family's ``kernels_only_checkpoint_keeps`` under every dynamic conv
    whose own entries were loaded."""
    owners = {key.rpartition('.')[0] for key in loaded}
    return tuple(f'{name}.{prefix}' for name, module in modules.items()
                 if name in owners and isinstance(module, DynamicConv2d)
                 for prefix in type(module).kernels_only_checkpoint_keeps)


def match_state_dict(model: nn.Module,
                     state_dict: StateDict) -> Tuple[StateDict, LoadReport]:
    """Fit ``state_dict`` (backbone keys) to ``model``.

    Keys whose tensor fits are returned for loading. A ``<conv>.weight``
    that does not fit a :class:`DynamicConv2d` as it is goes to the conv's
    :meth:`~DynamicConv2d.init_from_dense`, which writes the model at once
    (on a later error the model may be partly initialised). Model keys the
    checkpoint lacks keep their value only where that is expected: what a
    dense start leaves to the conv's own init (its attention), and
    BatchNorm ``num_batches_tracked`` counters, and what a family leaves to
    its init in a checkpoint of its kernels alone
    (:attr:`~DynamicConv2d.kernels_only_checkpoint_keeps`, e.g. the
    release's ``convert_to_fdconv.py`` output).

    Returns:
        tuple: The dict to load (model keys only, without what the dense
        starts wrote) and a :class:`LoadReport`.
    """
    target = model.state_dict()
    modules = dict(model.named_modules())
    param_names = _param_names(model)
    out: StateDict = OrderedDict()
    loaded, expanded, unexpected, mismatched, refused = [], [], [], [], []
    written: Set[str] = set()
    dense_owners = []
    for key, value in state_dict.items():
        want = target.get(key)
        if want is not None and value.shape == want.shape:
            out[key] = value.to(want.dtype)
            loaded.append(key)
            continue
        owner_name, _, leaf = key.rpartition('.')
        owner = modules.get(owner_name)
        if leaf == 'weight' and isinstance(owner, DynamicConv2d):
            try:
                params = owner.init_from_dense(value)
            except ValueError as err:
                if want is not None:
                    mismatched.append(
                        (key, tuple(value.shape), tuple(want.shape)))
                else:
                    refused.append((key, str(err)))
                continue
            expanded.append(key)
            dense_owners.append(owner_name + '.')
            for param in params:
                written.update(param_names.get(id(param), ()))
            continue
        if want is None:
            unexpected.append(key)
        else:
            mismatched.append((key, tuple(value.shape), tuple(want.shape)))
    mismatched_keys = {m[0] for m in mismatched}
    keeps = _kernels_only_keeps(modules, out)
    kept_init, missing = [], []
    for key in target:
        if key in out or key in written or key in mismatched_keys:
            continue
        if key.endswith('num_batches_tracked') or key.startswith(
                tuple(dense_owners) + keeps):
            kept_init.append(key)
        else:
            missing.append(key)
    return out, LoadReport(loaded, expanded, kept_init, missing, unexpected,
                           mismatched, refused)


def load_pretrained(model: nn.Module,
                    checkpoint: str,
                    arch: str,
                    prefix: Optional[str] = None,
                    strict: bool = True,
                    logger: Optional[MMLogger] = None) -> LoadReport:
    """Load ImageNet weights into a (dynamic) backbone.

    Args:
        model: The backbone.
        checkpoint: Path or URL (see
            :func:`~dynconv_mmdet.checkpoint.reader.resolve_checkpoint_path`).
        arch: ``'resnet'`` or ``'mobilenet_v2'`` (selects the key maps).
        prefix: Only use keys under this prefix (e.g. ``'backbone.'``).
        strict: Raise :class:`CheckpointMismatchError` on any mismatch.

    Returns:
        LoadReport: Loaded, dense-started and kept keys, and mismatches.
    """
    state_dict = extract_state_dict(
        read_checkpoint(checkpoint, entries=non_tensor_entries()), checkpoint)
    if prefix:
        state_dict = strip_prefix(
            strip_prefix(state_dict, 'module.'), prefix, only=True)
        if not state_dict:
            raise CheckpointMismatchError(
                f'checkpoint {checkpoint} has no key under prefix {prefix!r}')
    try:
        state_dict = to_backbone_state_dict(state_dict, arch)
    except KeyError as err:
        raise CheckpointMismatchError(
            f'checkpoint {checkpoint}: {err.args[0]}') from err
    to_load, report = match_state_dict(model, state_dict)
    message = format_mismatch(report, checkpoint, 'the backbone',
                              _BACKBONE_HINT)
    if not report.fits and strict:
        raise CheckpointMismatchError(message)
    if not report.fits:
        print_log(
            message + '\nstrict_pretrained=False: loading the keys that fit.',
            logger=logger or 'current',
            level=30)
    model.load_state_dict(to_load, strict=False)
    if report.expanded:
        print_log(
            f'{checkpoint}: initialised {len(report.expanded)} dynamic convs '
            'from dense weights (each conv family starts from the dense '
            'kernel; the attention keeps its own init)',
            logger=logger or 'current')
    print_log(
        f'loaded {len(report.loaded) + len(report.expanded)} tensors from '
        f'{checkpoint}',
        logger=logger or 'current')
    return report


def _load_backbone_pretrained(backbone: nn.Module, checkpoint: str, arch: str,
                              prefix: Optional[str],
                              strict: bool) -> LoadReport:
    """The backbones' ``Pretrained`` loader (looks :func:`load_pretrained`
    up when called)."""
    return load_pretrained(
        backbone, checkpoint, arch=arch, prefix=prefix, strict=strict)


register_pretrained_loader(_load_backbone_pretrained)
