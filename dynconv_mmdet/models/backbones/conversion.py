"""Pure key conversions from classification checkpoints to our backbones.

Supported layouts (every function raises ``KeyError`` on a key it does not
know, listing them, so a wrong file is never half-loaded):

* official ODConv releases (github OSVAI/ODConv): ``{'state_dict': ...}``
  with every key prefixed ``module.``; OD-ResNet keys are torchvision names,
  OD-MobileNetV2 keys are torchvision-style ``features.N...``;
* torchvision ResNet / MobileNetV2 ``state_dict`` files (dense);
* mmpretrain / mmdet checkpoints (``backbone.`` prefix, mmdet key names).
"""
import re
from typing import Dict, List, Tuple

from torch import Tensor

StateDict = Dict[str, Tensor]

# MobileNetV2 (t, c, n, s) settings, as in mmdet's MobileNetV2.
MBV2_ARCH = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

_RESNET_KEY = re.compile(
    r'^(conv1\.|bn1\.|layer\d+\.\d+\.(conv\d|bn\d|downsample\.[01])\.)')
_CLASSIFIER_KEY = re.compile(r'^(fc|classifier)\.')


def _raise_unknown(unknown: List[str], what: str) -> None:
    if unknown:
        shown = ', '.join(unknown[:10])
        more = f' (and {len(unknown) - 10} more)' if len(unknown) > 10 else ''
        raise KeyError(f'{len(unknown)} keys are not part of {what}: '
                       f'{shown}{more}')


def strip_prefix(state_dict: StateDict, prefix: str) -> StateDict:
    """Remove ``prefix`` from every key that has it (others unchanged)."""
    n = len(prefix)
    return {
        (k[n:] if k.startswith(prefix) else k): v
        for k, v in state_dict.items()
    }


def mobilenet_v2_block_names() -> List[Tuple[str, int]]:
    """``[(mmdet block name, expand ratio)]`` for ``features.1..17``."""
    names = []
    for stage, (expand, _, num_blocks, _) in enumerate(MBV2_ARCH, start=1):
        names += [(f'layer{stage}.{i}', expand) for i in range(num_blocks)]
    return names


def _mbv2_units(expand_ratio: int) -> Tuple[str, ...]:
    """mmdet's ``InvertedResidual`` conv names, in order."""
    units = ('depthwise_conv', 'linear_conv')
    return units if expand_ratio == 1 else ('expand_conv', ) + units


def _mbv2_feature_key(key: str) -> str:
    """Map one torchvision-style ``features.`` key to mmdet's name."""
    match = re.match(r'^features\.(\d+)\.(.*)$', key)
    if match is None:
        raise KeyError(key)
    index, rest = int(match.group(1)), match.group(2)
    blocks = mobilenet_v2_block_names()
    if index in (0, len(blocks) + 1):
        module = 'conv1' if index == 0 else 'conv2'
        sub = re.match(r'^([01])\.(.*)$', rest)
        if sub is None:
            raise KeyError(key)
        return f'{module}.{("conv", "bn")[int(sub.group(1))]}.{sub.group(2)}'
    if not 1 <= index <= len(blocks):
        raise KeyError(key)
    block, expand = blocks[index - 1]
    units = _mbv2_units(expand)
    # ConvBNReLU units are conv.<i>.{0,1}; the linear conv and its BN are
    # two plain entries at the end.
    last = len(units) - 1
    sub = re.match(r'^conv\.(\d+)\.(.*)$', rest)
    if sub is None:
        raise KeyError(key)
    pos, tail = int(sub.group(1)), sub.group(2)
    if pos < last:
        unit = re.match(r'^([01])\.(.*)$', tail)
        if unit is None:
            raise KeyError(key)
        part = ('conv', 'bn')[int(unit.group(1))]
        return f'{block}.{units[pos]}.{part}.{unit.group(2)}'
    if pos in (last, last + 1):
        part = 'conv' if pos == last else 'bn'
        return f'{block}.{units[last]}.{part}.{tail}'
    raise KeyError(key)


def _mmpretrain_mbv2_key(key: str) -> str:
    """mmpretrain's ``layerX.Y.conv.N.`` MobileNetV2 names -> mmdet's."""
    match = re.match(r'^(layer(\d+)\.\d+)\.conv\.(\d+)\.(.*)$', key)
    if match is None:
        return key
    stage, pos = int(match.group(2)), int(match.group(3))
    if not 1 <= stage <= len(MBV2_ARCH):
        return key
    units = _mbv2_units(MBV2_ARCH[stage - 1][0])
    if pos >= len(units):
        return key
    return f'{match.group(1)}.{units[pos]}.{match.group(4)}'


def convert_official_state_dict(state_dict: StateDict, arch: str) -> StateDict:
    """Official ODConv / torchvision classification keys -> backbone keys.

    Args:
        state_dict: Classification weights; a ``module.`` prefix is removed.
        arch: ``'resnet'`` or ``'mobilenet_v2'``.

    Returns:
        The backbone weights with mmdet key names; the classifier
        (``fc.*`` / ``classifier.*``) is dropped.

    Raises:
        KeyError: Keys that belong to neither the backbone nor the classifier.
        ValueError: Unknown ``arch``.
    """
    if arch not in ('resnet', 'mobilenet_v2'):
        raise ValueError(f"arch must be 'resnet' or 'mobilenet_v2', got "
                         f'{arch!r}')
    state_dict = strip_prefix(state_dict, 'module.')
    out: StateDict = {}
    unknown = []
    for key, value in state_dict.items():
        if _CLASSIFIER_KEY.match(key):
            continue
        if arch == 'resnet':
            if _RESNET_KEY.match(key):
                out[key] = value
            else:
                unknown.append(key)
            continue
        try:
            out[_mbv2_feature_key(key)] = value
        except KeyError:
            unknown.append(key)
    _raise_unknown(unknown, f'an official {arch} classification model')
    return out


def convert_mmpretrain_state_dict(state_dict: StateDict) -> StateDict:
    """mmpretrain / mmdet checkpoint -> backbone keys.

    Keeps the ``backbone.`` entries (prefix removed) and drops the rest of
    the classifier or detector (``head.``, ``neck.``, ``data_preprocessor.``
    ...).

    Raises:
        KeyError: If there is no ``backbone.`` key at all.
    """
    state_dict = strip_prefix(state_dict, 'module.')
    out = {
        k[len('backbone.'):]: v
        for k, v in state_dict.items() if k.startswith('backbone.')
    }
    if not out:
        _raise_unknown(sorted(state_dict), 'an mmpretrain/mmdet backbone')
    return out


def to_backbone_state_dict(state_dict: StateDict, arch: str) -> StateDict:
    """Bring any supported classification layout to backbone keys.

    MobileNetV2 names of mmpretrain (``layerX.Y.conv.N``) become mmdet's
    (``expand_conv`` / ``depthwise_conv`` / ``linear_conv``).
    """
    plain = strip_prefix(state_dict, 'module.')
    if any(k.startswith('backbone.') for k in plain):
        plain = convert_mmpretrain_state_dict(plain)
    elif not (arch == 'mobilenet_v2' and all(
            k.startswith(('conv1.', 'conv2.', 'layer')) for k in plain)):
        return convert_official_state_dict(plain, arch)
    if arch == 'mobilenet_v2':
        plain = {_mmpretrain_mbv2_key(k): v for k, v in plain.items()}
    return plain
