# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Official KernelWarehouse releases (github OSVAI/KernelWarehouse).

Its ImageNet checkpoints (``main.py``) hold ``{'model': state_dict,
'optimizer', 'epoch', 'scaler', 'args': argparse.Namespace}`` (and
``model_ema`` when trained with it); its COCO detectors (mmdet 2.x) hold the
same backbone keys under ``backbone.``. The state dict of a KW model is

* the warehouses, ``warehouse_manager.weights.<i>``, ``i`` in the order the
  release creates them (the order in which their first conv is reserved);
* per KW conv its attention, ``<conv>.attention.{fc1, norm1, fc2, fc3,
  basis_bias}``; static convs and norms as in torchvision;
* the classifier: ``fc.*`` (ResNet), ``classifier.*`` (MobileNetV2; the
  1/2x model's is a KW linear layer, ``classifier.1.conv.*``, drawing from
  the release's last warehouse, ``'classifier'``, of 1-d cells).

The warehouses map by index, not by name: the release's names (e.g.
``stage2_l_c`` from its character-split ``"layer_conv"``) are not stored,
and our backbones create their warehouses in the release's order
(``docs/kernel_warehouse.md``). The classifier and its warehouse are
dropped; the other keys are ResNet keys as they are, and MobileNetV2's
``features.N`` keys renamed as for the official ODConv layout
(:func:`~.official.convert_official_state_dict`). MobileNetV2 backbone
files with our names (``conv1.`` / ``layerX.Y.`` / ``conv2.``, from a
converter) are kept as they are.

The ``'args'`` entry is read as inert data and dropped (a
:class:`~dynconv_mmdet.checkpoint.reader.NonTensorEntry`).
"""
import re
from typing import Dict, List, Tuple

from ..keys import StateDict
from ..reader import NonTensorEntry
from .base import KeyMap, register_key_map
from .official import convert_official_state_dict

#: The release's non-tensor entry: its training arguments.
RELEASE_ARGS = NonTensorEntry('args', ('argparse.Namespace', ))

_WAREHOUSE_KEY = re.compile(r'^warehouse_manager\.weights\.(\d+)$')
# the 1/2x MobileNetV2's KW classifier (``classifier.1`` = KWLinear)
_KW_CLASSIFIER_KEY = re.compile(r'^classifier\.\d+\.conv\.')
_MMDET_MBV2_KEY = re.compile(r'^(conv1\.|conv2\.|layer\d+\.\d+\.)')
_ARCHS = ('resnet', 'mobilenet_v2')


def is_kernel_warehouse_state_dict(state_dict: StateDict) -> bool:
    """Whether ``state_dict`` (no ``module.`` prefix) holds KW warehouses."""
    return any(_WAREHOUSE_KEY.match(k) for k in state_dict)


def split_warehouses(
        state_dict: StateDict) -> Tuple[Dict[int, str], StateDict]:
    """``({index: key} of the warehouses, the other entries)``."""
    warehouses, rest = {}, {}
    for key, value in state_dict.items():
        match = _WAREHOUSE_KEY.match(key)
        if match:
            warehouses[int(match.group(1))] = key
        else:
            rest[key] = value
    return warehouses, rest


def _classifier_warehouse(state_dict: StateDict,
                          warehouses: Dict[int, str]) -> List[int]:
    """The warehouse of a KW classifier (the release's last one), if any.

    Raises:
        KeyError: A KW classifier without a last warehouse of 1-d cells.
    """
    if not any(_KW_CLASSIFIER_KEY.match(k) for k in state_dict):
        return []
    if not warehouses:
        raise KeyError('the checkpoint has a KernelWarehouse classifier but '
                       'no warehouse_manager.weights.<i>')
    last = max(warehouses)
    cells = state_dict[warehouses[last]]
    if cells.dim() != 4:  # [n, c_out, c_in, k]: KWLinear's 1-d cells
        raise KeyError(
            f'the checkpoint has a KernelWarehouse classifier but its last '
            f'warehouse ({warehouses[last]}, shape {tuple(cells.shape)}) is '
            'not one of 1-d cells; the release creates the classifier\'s '
            'warehouse last')
    return [last]


def convert_kernel_warehouse_state_dict(state_dict: StateDict,
                                        arch: str) -> StateDict:
    """A KW release's classification (or detection backbone) keys ->
    backbone keys.

    Args:
        state_dict: Weights without a ``module.`` prefix.
        arch: ``'resnet'`` or ``'mobilenet_v2'``.

    Returns:
        The backbone weights: warehouses by index (the classifier's one
        dropped, the others keep their index), the classifier dropped, the
        other keys as :func:`~.official.convert_official_state_dict` maps
        them (MobileNetV2 keys with our names kept).

    Raises:
        KeyError: Keys that belong to neither the backbone nor the
            classifier (listed), or warehouse indices with a gap.
        ValueError: Unknown ``arch``.
    """
    if arch not in _ARCHS:
        raise ValueError(f"arch must be 'resnet' or 'mobilenet_v2', got "
                         f'{arch!r}')
    warehouses, rest = split_warehouses(state_dict)
    dropped = _classifier_warehouse(state_dict, warehouses)
    kept = sorted(i for i in warehouses if i not in dropped)
    if kept != list(range(len(kept))):
        raise KeyError(
            f'warehouses {kept} are not numbered 0..{len(kept) - 1}: '
            'warehouse_manager.weights.<i> must hold every warehouse the '
            'backbone draws from, in the release\'s order')
    out: StateDict = {warehouses[i]: state_dict[warehouses[i]] for i in kept}
    if arch == 'mobilenet_v2':
        ours = {k: v for k, v in rest.items() if _MMDET_MBV2_KEY.match(k)}
        rest = {k: v for k, v in rest.items() if k not in ours}
        out.update(ours)
    try:
        out.update(convert_official_state_dict(rest, arch))
    except KeyError as err:
        raise KeyError(f'{err.args[0]} (read as an official '
                       'KernelWarehouse checkpoint)') from err
    return out


KERNEL_WAREHOUSE = register_key_map(
    KeyMap(
        name='official KernelWarehouse',
        recognises=lambda state_dict, arch: arch in _ARCHS and
        is_kernel_warehouse_state_dict(state_dict),
        to_backbone=convert_kernel_warehouse_state_dict,
        priority=5,
        entries=(RELEASE_ARGS, )))
