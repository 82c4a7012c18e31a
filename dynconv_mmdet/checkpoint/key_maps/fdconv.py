# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Official FDConv release (github Linwei-Chen/FDConv).

Its COCO detectors (``FDConv_detection/``, mmdet 2.28) hold its
``ResNet_FDConv`` under ``backbone.``: mmdet's ResNet keys (no classifier:
the stem and the downsample convs dense, ``conv1`` / ``bn1`` /
``layerX.Y.{convN, bnN, downsample.{0,1}}``), every block conv an
``FDConv`` with the release's parameter names:

* ``dft_weight`` (the kernel's spectrum; the release deletes ``weight``);
* ``KSM_Global.{fc.weight, bn.*, relu.{scale, bias}, {channel, filter,
  spatial, kernel}_fc.{weight, bias}}`` (the global attention; ``relu`` is
  its StarReLU);
* ``KSM_Local.{conv.weight, norm.{weight, bias}}`` (the local attention);
* ``FBM.freq_weight_conv_list.<i>.{weight, bias}`` (3x3 convs only).

Its buffers (frequency indices, FBM masks) are not persistent. The ImageNet
files that its ``tools/convert_to_fdconv.py`` writes from a torchvision
ResNet keep torchvision's names with ``.dft_weight`` for the converted
convs and the classifier ``fc.*``. :class:`~dynconv_mmdet.models.layers.
FDConv2d` keeps every one of these names, so the keys map as they are: this
layout checks each one (any other raises) and drops the classifier.
"""
import re

from ..keys import StateDict, raise_unknown_keys
from .base import KeyMap, register_key_map

_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
#: Parameter / buffer names of one released ``FDConv`` (relative to it).
FDCONV_LEAF = (r'(dft_weight'
               r'|KSM_Global\.(fc\.weight|relu\.(scale|bias)'
               rf'|bn\.{_BN}'
               r'|(channel_fc|filter_fc|spatial_fc|kernel_fc)\.(weight|bias))'
               r'|KSM_Local\.(conv\.weight|norm\.(weight|bias))'
               r'|FBM\.freq_weight_conv_list\.\d+\.(weight|bias))')
_RESNET_KEY = re.compile(
    rf'(conv1|bn1|layer\d+\.\d+\.(conv\d|bn\d|downsample\.[01]))\.{_BN}'
    rf'|layer\d+\.\d+\.conv\d\.{FDCONV_LEAF}')
_CLASSIFIER_KEY = re.compile(r'fc\.(weight|bias)')


def is_fdconv_state_dict(state_dict: StateDict) -> bool:
    """Whether ``state_dict`` (no ``module.`` prefix) holds FDConv spectra
    (``<conv>.dft_weight``)."""
    return any(k.endswith('.dft_weight') for k in state_dict)


def convert_fdconv_state_dict(state_dict: StateDict, arch: str) -> StateDict:
    """An FDConv release's ResNet keys (detection backbone or converted
    ImageNet model) -> backbone keys.

    Args:
        state_dict: Weights without a ``module.`` prefix.
        arch: ``'resnet'`` (the release's only FDConv backbone).

    Returns:
        The backbone weights, keys unchanged; the classifier (``fc.*``)
        dropped.

    Raises:
        KeyError: Keys that are neither a ResNet key with the release's
            FDConv names nor the classifier (listed).
        ValueError: Another ``arch``.
    """
    if arch != 'resnet':
        raise ValueError(f"arch must be 'resnet' for an FDConv release "
                         f'checkpoint, got {arch!r}')
    out: StateDict = {}
    unknown = []
    for key, value in state_dict.items():
        if _CLASSIFIER_KEY.fullmatch(key):
            continue
        if _RESNET_KEY.fullmatch(key):
            out[key] = value
        else:
            unknown.append(key)
    raise_unknown_keys(unknown, 'an official FDConv ResNet')
    return out


FDCONV = register_key_map(
    KeyMap(
        name='official FDConv',
        recognises=lambda state_dict, arch: arch == 'resnet' and
        is_fdconv_state_dict(state_dict),
        to_backbone=convert_fdconv_state_dict,
        priority=4))
