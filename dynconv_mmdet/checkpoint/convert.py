# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""File-to-file conversions behind ``tools/model_converters/``.

Each reads its source with ``weights_only=True`` and writes
``{'state_dict': ..., 'meta': ...}``, which our backbones or detectors load
strictly.
"""
import os
import os.path as osp
import re
import time
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Tuple

import torch
import torch.nn as nn

from ..utils.formatting import format_listing
from .backbone import match_state_dict
from .errors import CheckpointMismatchError
from .key_maps import RELEASE_ARGS, convert_mmpretrain_state_dict, find_key_map
from .key_maps.official import convert_official_state_dict
from .keys import strip_prefix
from .reader import NonTensorEntry, extract_state_dict, safe_torch_load
from .released_detector import (convert_released_detector,
                                released_detector_layout,
                                released_detector_release,
                                released_detector_type)
from .report import format_mismatch


def _save(obj: Dict[str, Any], dst: str) -> None:
    if osp.dirname(dst):
        os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(obj, dst)


def _check_backbone(converted: Dict[str, Any], src: str,
                    check_against: nn.Module, hint: str) -> None:
    """Raise unless ``converted`` fits ``check_against`` exactly (every key,
    no dense start)."""
    _, report = match_state_dict(check_against, converted)
    target = f'the {type(check_against).__name__} asked for'
    if not report.fits:
        raise CheckpointMismatchError(
            format_mismatch(report, src, target, hint))
    if report.expanded:
        raise CheckpointMismatchError(
            f'checkpoint {src} does not fit {target}: it holds dense conv '
            f'weights ({format_listing(report.expanded)}), not the kernels '
            f'of a dynamic conv. {hint}')


#: mmdet's ``ResNet.arch_settings``: depth -> (bottleneck blocks, blocks
#: per stage).
RESNET_LAYOUTS: Dict[int, Tuple[bool, Tuple[int, ...]]] = {
    18: (False, (2, 2, 2, 2)),
    34: (False, (3, 4, 6, 3)),
    50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)),
    152: (True, (3, 8, 36, 3)),
}
_BLOCK_KEY = re.compile(r'^layer(\d+)\.(\d+)\.(.*)$')


def _describe_resnet_layout(bottleneck: bool, blocks: Tuple[int, ...]) -> str:
    """``'Bottleneck x 3-4-6-3'``."""
    kind = 'Bottleneck' if bottleneck else 'BasicBlock'
    return f'{kind} x {"-".join(str(n) for n in blocks)}'


def resnet_layout(
        state_dict: Mapping[str, Any]) -> Tuple[bool, Tuple[int, ...]]:
    """``(bottleneck blocks, blocks per stage)`` of ResNet backbone keys
    (``layer<stage>.<block>.conv3...``).

    A stage's block count is its highest block index plus one; the blocks
    are Bottlenecks when any holds a ``conv3``.
    """
    last: Dict[int, int] = {}
    bottleneck = False
    for key in state_dict:
        match = _BLOCK_KEY.match(key)
        if match is None:
            continue
        stage, block = int(match.group(1)), int(match.group(2))
        last[stage] = max(last.get(stage, -1), block)
        bottleneck = bottleneck or match.group(3).startswith('conv3.')
    stages = max(last, default=0)
    return bottleneck, tuple(last.get(i, -1) + 1 for i in range(1, stages + 1))


def resnet_depth(state_dict: Mapping[str, Any]) -> Optional[int]:
    """The ResNet depth whose layout (:data:`RESNET_LAYOUTS`) the backbone
    keys have, or None if none has it."""
    layout = resnet_layout(state_dict)
    for depth, known in RESNET_LAYOUTS.items():
        if known == layout:
            return depth
    return None


def _backbone_depth(backbone: Optional[nn.Module]) -> Optional[int]:
    """The depth of a ResNet backbone (its ``depth`` attribute, as mmdet's
    ResNet keeps it), or None."""
    depth = getattr(backbone, 'depth', None)
    return depth if depth in RESNET_LAYOUTS else None


def check_resnet_depth(state_dict: Mapping[str, Any], depth: int, src: str,
                       dst: str) -> None:
    """Refuse ResNet backbone keys whose blocks per stage are not those of
    ``depth``.

    Args:
        state_dict: Converted backbone keys (mmdet's ResNet names).
        depth (int): The depth asked for (``--depth``).
        src (str): The file they come from (named in the message).
        dst (str): The output that will not be written (named).

    Raises:
        CheckpointMismatchError: The layouts differ, or ``depth`` is none of
            :data:`RESNET_LAYOUTS`; the message names the file's depth.
    """
    known = ', '.join(str(d) for d in RESNET_LAYOUTS)
    if depth not in RESNET_LAYOUTS:
        raise CheckpointMismatchError(
            f'--depth {depth} is not a ResNet depth (one of {known}); '
            f'{dst} was not written.')
    found = resnet_layout(state_dict)
    if found == RESNET_LAYOUTS[depth]:
        return
    asked = _describe_resnet_layout(*RESNET_LAYOUTS[depth])
    actual = resnet_depth(state_dict)
    if actual is not None:
        what = (f'is a ResNet-{actual} ({_describe_resnet_layout(*found)} '
                f'blocks per stage), not the ResNet-{depth} asked for '
                f'({asked}). Convert it with --depth {actual}')
    else:
        what = (f'has {_describe_resnet_layout(*found)} blocks per stage, '
                f'the layout of no ResNet depth ({known}); ResNet-{depth} has '
                f'{asked}. Check that it is a complete ResNet checkpoint')
    raise CheckpointMismatchError(
        f'checkpoint {src} {what}; {dst} was not written.')


def mobilenet_v2_stem_width(widen_factor: float) -> int:
    """Output channels of mmdet's MobileNetV2 stem:
    ``make_divisible(32 * widen_factor, 8)`` (mmdet's rounding, written out
    so that converting does not import mmdet's models)."""
    value = 32 * widen_factor
    width = max(8, int(value + 4) // 8 * 8)
    return width + 8 if width < 0.9 * value else width


def check_mobilenet_v2_width(state_dict: Mapping[str, Any],
                             widen_factor: float, src: str, dst: str) -> None:
    """Refuse MobileNetV2 backbone keys whose stem width is not that of
    ``widen_factor`` (:func:`mobilenet_v2_stem_width`). Keys without a stem
    conv are left to the strict check.

    Raises:
        CheckpointMismatchError: The widths differ (both are named).
    """
    stem = state_dict.get('conv1.conv.weight')
    if stem is None or not hasattr(stem, 'shape') or len(stem.shape) != 4:
        return
    expected = mobilenet_v2_stem_width(widen_factor)
    if int(stem.shape[0]) == expected:
        return
    raise CheckpointMismatchError(
        f'checkpoint {src} is a MobileNetV2 whose stem has {stem.shape[0]} '
        f'channels (widen factor about {stem.shape[0] / 32:g}), not the '
        f'{expected} of --widen-factor {widen_factor:g}. Convert it with the '
        f'widen factor it was trained with; {dst} was not written.')


def convert_official_backbone(
        src: str,
        dst: str,
        arch: str,
        check_against: Optional[nn.Module] = None,
        depth: Optional[int] = None,
        widen_factor: Optional[float] = None) -> Dict[str, Any]:
    """Official ODConv ImageNet checkpoint -> backbone checkpoint.

    Args:
        src (str): The released file (``module.``-prefixed ``state_dict``).
        dst (str): Output path; not written when a check fails.
        arch (str): ``'resnet'`` or ``'mobilenet_v2'``.
        check_against (nn.Module, optional): A freshly built backbone the
            result must fit exactly.
        depth (int, optional): ResNet only: the depth the file must have
            (its blocks per stage, see :func:`check_resnet_depth`); by
            default that of ``check_against``.
        widen_factor (float, optional): MobileNetV2 only: the widen factor
            the file must have (its stem width).

    Returns:
        dict: What was saved.

    Raises:
        CheckpointMismatchError: The result does not fit ``check_against``,
            ``depth`` or ``widen_factor``.
    """
    state_dict = extract_state_dict(safe_torch_load(src), src)
    converted = convert_official_state_dict(state_dict, arch)
    if depth is None:
        depth = _backbone_depth(check_against)
    if arch == 'resnet' and depth is not None:
        check_resnet_depth(converted, depth, src, dst)
    if arch == 'mobilenet_v2' and widen_factor is not None:
        check_mobilenet_v2_width(converted, widen_factor, src, dst)
    if check_against is not None:
        _check_backbone(
            converted, src, check_against,
            'Check --arch, --depth / --widen-factor and --kernel-num '
            'against the released model.')
    out = dict(
        state_dict=converted, meta=dict(source=osp.basename(src), arch=arch))
    _save(out, dst)
    return out


#: The KernelWarehouse release's training arguments, kept as plain data.
_KW_ARGS = NonTensorEntry(RELEASE_ARGS.key, RELEASE_ARGS.globals, keep=True)
#: The entries of the release's ``args`` that say which model it is.
_RELEASE_SETTINGS = ('model', 'reduction', 'cell_num_ratio',
                     'cell_inplane_ratio', 'cell_outplane_ratio',
                     'sharing_range', 'nonlocal_basis_ratio', 'epochs')


def convert_kw_official_backbone(
        src: str,
        dst: str,
        arch: str,
        check_against: Optional[nn.Module] = None,
        depth: Optional[int] = None) -> Dict[str, Any]:
    """Official KernelWarehouse ImageNet checkpoint -> backbone checkpoint.

    Reads the release's ``{'model': ..., 'args': argparse.Namespace, ...}``
    files safely (the ``args`` object as inert data, see
    :class:`~.reader.NonTensorEntry`); a ``module.`` prefix is removed. A
    KW model (``kw_resnet*``, ``kw_mobilenetv2_*``, ``kw1d2x_*``) is mapped
    by the KernelWarehouse key map (warehouses by index, the classifier and
    its warehouse dropped); the release's static models (``resnet*``,
    ``mobilenetv2_*``, the baselines of its detectors) by the torchvision
    layout. The release's model name and KW settings (``args``) are kept in
    ``meta['release_args']``.

    Args:
        src (str): The released file.
        dst (str): Output path; not written when the check fails.
        arch (str): ``'resnet'`` or ``'mobilenet_v2'``.
        check_against (nn.Module, optional): A freshly built backbone (e.g.
            ``DynamicResNet(depth=50, preset='kw1x')``) the result must fit
            exactly.
        depth (int, optional): ResNet only: the depth the file must have,
            checked first so that the message names the file's depth (see
            :func:`check_resnet_depth`); by default that of
            ``check_against``.

    Returns:
        dict: What was saved, ``{'state_dict': ..., 'meta': ...}``.

    Raises:
        CheckpointMismatchError: The result does not fit ``depth`` or
            ``check_against`` (the keys and shapes are listed).
        KeyError: Keys that are not part of the release's models (listed).
    """
    ckpt = safe_torch_load(src, entries=(_KW_ARGS, ))
    state_dict = strip_prefix(extract_state_dict(ckpt, src), 'module.')
    layout = find_key_map(state_dict, arch)
    converted = layout.to_backbone(state_dict, arch)
    if depth is None:
        depth = _backbone_depth(check_against)
    if arch == 'resnet' and depth is not None:
        check_resnet_depth(converted, depth, src, dst)
    if check_against is not None:
        _check_backbone(
            converted, src, check_against,
            'Check --arch, --depth / --widen-factor and --preset against the '
            'released model (its json: e.g. kw1x_resnet50.json is --arch '
            'resnet --depth 50 --preset kw1x).')
    meta = dict(source=osp.basename(src), arch=arch, layout=layout.name)
    args = ckpt.get(_KW_ARGS.key)
    if isinstance(args, dict):
        meta['release_args'] = {
            k: args[k]
            for k in _RELEASE_SETTINGS if k in args
        }
    out = dict(state_dict=converted, meta=meta)
    _save(out, dst)
    return out


def convert_released_detector_file(
        src: str,
        dst: str,
        arch: str,
        release: Optional[str] = None) -> Dict[str, Any]:
    """A released ODConv / KernelWarehouse / FDConv MMDetection 2.x
    detector -> our detector file.

    See :func:`~.released_detector.convert_released_detector` (``release``
    ``None``: told from the keys). mmdet 2.x's ``meta['CLASSES']`` becomes
    3.x's ``meta['dataset_meta']['classes']``.

    Returns:
        dict: What was saved (``state_dict`` and ``meta``).
    """
    ckpt = safe_torch_load(src)
    state_dict = ckpt.get('state_dict', ckpt)
    src_meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    release = release or released_detector_release(state_dict)
    converted = convert_released_detector(state_dict, arch, release)
    dropped = [
        k for k in released_detector_layout(arch, release).classifier_keys
        if k in state_dict or f'module.{k}' in state_dict
    ]
    meta = dict(
        source=osp.abspath(src),
        converter='dynconv_mmdet.checkpoint.convert_released_detector',
        release=release,
        arch=arch,
        detector=released_detector_type(state_dict),
        dropped_keys=dropped,
        time=time.strftime('%Y-%m-%d %H:%M:%S'))
    classes = src_meta.get('CLASSES')
    if classes:
        meta['dataset_meta'] = dict(classes=tuple(classes))
    out = {'state_dict': converted, 'meta': meta}
    _save(out, dst)
    return out


def extract_backbone(checkpoint: Mapping[str, Any],
                     prefix: str = 'backbone.') -> 'OrderedDict[str, Any]':
    """The backbone weights of a classification (or detection) checkpoint.

    Args:
        checkpoint (Mapping): A loaded checkpoint, either with a
            ``state_dict`` entry (mmengine) or a plain state dict. A
            ``module.`` prefix (DataParallel) is removed first.
        prefix (str): Prefix of the backbone keys (removed).

    Raises:
        KeyError: If no key starts with ``prefix``.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping):
        raise TypeError('The checkpoint holds no state dict, got '
                        f'{type(state_dict).__name__}')
    return OrderedDict(convert_mmpretrain_state_dict(dict(state_dict), prefix))


def export_backbone(src: str,
                    dst: str,
                    prefix: str = 'backbone.') -> Dict[str, Any]:
    """Load ``src`` safely, keep its backbone and save it to ``dst``.

    Returns:
        dict: What was saved, ``{'meta': ..., 'state_dict': ...}``.
    """
    checkpoint = safe_torch_load(src)
    state_dict = extract_backbone(checkpoint, prefix)
    meta = dict(source=osp.basename(src), prefix=prefix)
    src_meta = checkpoint.get('meta')
    if isinstance(src_meta, Mapping):
        for key in ('epoch', 'iter', 'mmengine_version'):
            if key in src_meta:
                meta[key] = src_meta[key]
    out = dict(meta=meta, state_dict=state_dict)
    _save(out, dst)
    return out
