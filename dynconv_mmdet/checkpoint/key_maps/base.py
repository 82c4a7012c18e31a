# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The registry of checkpoint layouts that map to our backbones.

A :class:`KeyMap` recognises the state dict of one layout (official ODConv
or torchvision, mmpretrain / mmdet, ...) and renames its keys to those of
:class:`~dynconv_mmdet.models.DynamicResNet` /
:class:`~dynconv_mmdet.models.DynamicMobileNetV2`. A new layout is one more
module that calls :func:`register_key_map`; it may also name the non-tensor
entries its files carry (e.g. ``'args'``), which the safe reader then drops
instead of refusing the file.
"""
from typing import Callable, Dict, List, NamedTuple, Tuple

from torch import Tensor

from ..keys import strip_prefix
from ..reader import NonTensorEntry

StateDict = Dict[str, Tensor]

#: The backbone families a key map can target (``pretrained_arch`` of the
#: backbones).
ARCHS = ('resnet', 'mobilenet_v2', 'cspnext', 'csp_darknet')


class KeyMap(NamedTuple):
    """One checkpoint layout.

    Attributes:
        name (str): Shown in messages, e.g. ``'official ODConv /
            torchvision'``.
        recognises (callable): ``(state_dict, arch) -> bool`` on the state
            dict without its ``module.`` prefix.
        to_backbone (callable): ``(state_dict, arch) -> state_dict`` with
            backbone keys; raises ``KeyError`` listing keys it does not know
            (see :func:`~dynconv_mmdet.checkpoint.keys.raise_unknown_keys`).
        priority (int): Key maps are asked in decreasing priority; the most
            specific layout first.
        entries (tuple[NonTensorEntry]): Non-tensor top-level entries of
            this layout's files, for the safe reader.
    """
    name: str
    recognises: Callable[[StateDict, str], bool]
    to_backbone: Callable[[StateDict, str], StateDict]
    priority: int = 0
    entries: Tuple[NonTensorEntry, ...] = ()


_KEY_MAPS: List[KeyMap] = []


def register_key_map(key_map: KeyMap) -> KeyMap:
    """Add a layout (replacing one of the same name)."""
    _KEY_MAPS[:] = [k for k in _KEY_MAPS if k.name != key_map.name]
    _KEY_MAPS.append(key_map)
    _KEY_MAPS.sort(key=lambda k: -k.priority)
    return key_map


def registered_key_maps() -> Tuple[KeyMap, ...]:
    """Registered layouts, in the order they are asked."""
    return tuple(_KEY_MAPS)


def non_tensor_entries() -> Tuple[NonTensorEntry, ...]:
    """The non-tensor entries of every registered layout."""
    return tuple(entry for k in _KEY_MAPS for entry in k.entries)


def find_key_map(state_dict: StateDict, arch: str) -> KeyMap:
    """The first registered layout that recognises ``state_dict``.

    Raises:
        ValueError: Unknown ``arch``.
        KeyError: No layout recognises it.
    """
    if arch not in ARCHS:
        raise ValueError(f'arch must be one of {ARCHS}, got {arch!r}')
    plain = strip_prefix(state_dict, 'module.')
    for key_map in _KEY_MAPS:
        if key_map.recognises(plain, arch):
            return key_map
    raise KeyError('no known checkpoint layout for a '
                   f'{arch} backbone (known: '
                   f'{", ".join(k.name for k in _KEY_MAPS)})')


def to_backbone_state_dict(state_dict: StateDict, arch: str) -> StateDict:
    """Bring any registered layout to backbone keys.

    A ``module.`` (DataParallel) prefix is removed first.

    Args:
        state_dict (dict): Weights of any registered layout.
        arch (str): ``'resnet'`` or ``'mobilenet_v2'``.

    Raises:
        KeyError: Keys the recognised layout does not know (listed).
    """
    plain = strip_prefix(state_dict, 'module.')
    return find_key_map(plain, arch).to_backbone(plain, arch)
