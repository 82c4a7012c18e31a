# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Convert the ODConv authors' released COCO detectors (MMDetection 2.x).

The OSVAI/ODConv release (``object_detection/``) trained Faster R-CNN and
Mask R-CNN with FPN on COCO in MMDetection 2.x, with the backbones
``OD_ResNet`` (depth 50) and ``OD_MobileNetV2`` (width 1.0), both with
``kernel_num=4`` and ``reduction=0.0625`` (ODConv 4x). Their state dicts are
laid out as follows:

* ``backbone.*``: the *classification* module names of the official
  OD-ResNet / OD-MobileNetV2 (torchvision-like ``conv1``, ``bn1``,
  ``layerX.Y.convZ[.attention.*]``, ``layerX.Y.downsample.{0,1}`` /
  ``features.N...``), including the ImageNet classifier that the detection
  backbones still construct but never call (``fc.{weight,bias}`` for
  OD-ResNet, ``classifier.1.{weight,bias}`` for OD-MobileNetV2). The
  classifier is dropped; everything else is mapped by the official key
  map (:func:`~dynconv_mmdet.checkpoint.key_maps.official.`
  ``convert_official_state_dict``).
* ``neck.*``, ``rpn_head.*``, ``roi_head.*``: MMDetection 2.x ``FPN``,
  ``RPNHead``, ``StandardRoIHead`` with ``Shared2FCBBoxHead`` (and
  ``FCNMaskHead``). Their parameter names (and the background-last class
  order of ``fc_cls``) are unchanged in MMDetection 3.x, so they are kept
  as they are, after checking each against the known names.

Any other key raises, so a checkpoint of another layout is never loaded
half-way.

Source of these facts: the release's ``object_detection/configs/odconv/*.py``
and ``object_detection/mmdet/models/backbones/od_{resnet,mobilenetv2}.py``
(github.com/OSVAI/ODConv).
"""
import re
from typing import Dict, List, Tuple

from ..utils.formatting import format_listing
from .key_maps.official import convert_official_state_dict
from .keys import strip_prefix

#: ``arch`` of :func:`convert_released_detector` -> ``arch`` of the backbone
#: converter ``convert_official_state_dict``.
BACKBONE_ARCHS: Dict[str, str] = {'r50': 'resnet', 'mbv2': 'mobilenet_v2'}

#: Keys of the unused ImageNet classifier inside the released backbones.
CLASSIFIER_KEYS: Dict[str, Tuple[str, ...]] = {
    'r50': ('backbone.fc.weight', 'backbone.fc.bias'),
    'mbv2': ('backbone.classifier.1.weight', 'backbone.classifier.1.bias'),
}

_HEAD_PATTERNS = tuple(
    re.compile(p) for p in (
        r'neck\.(lateral_convs|fpn_convs)\.\d+\.conv\.(weight|bias)',
        r'rpn_head\.(rpn_conv|rpn_cls|rpn_reg)\.(weight|bias)',
        r'roi_head\.bbox_head\.(shared_fcs\.\d+|fc_cls|fc_reg)'
        r'\.(weight|bias)',
        r'roi_head\.mask_head\.(convs\.\d+\.conv|upsample|conv_logits)'
        r'\.(weight|bias)',
    ))

# Parameter / buffer names of an official ODConv2d, a BatchNorm2d or a plain
# conv, relative to the module.
_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
_LEAF = (r'(weight|bias|running_mean|running_var|num_batches_tracked'
         rf'|attention\.fc\.weight|attention\.bn\.{_BN}'
         r'|attention\.(channel_fc|filter_fc|spatial_fc|kernel_fc)'
         r'\.(weight|bias))')
# Official detection backbone keys (``backbone.`` removed, classifier
# excluded). OD-ResNet-50 is checked down to the block index; the
# OD-MobileNetV2 feature indices are checked by the backbone converter.
_BACKBONE_PATTERNS = {
    'r50':
    re.compile(r'(conv1|bn1|layer(?P<stage>[1-4])\.(?P<block>\d+)\.'
               rf'(conv[1-3]|bn[1-3]|downsample\.[01]))\.{_LEAF}'),
    'mbv2':
    re.compile(rf'features\.\d+\.(\d+\.|conv\.\d+\.(\d+\.)?){_LEAF}'),
}
_R50_BLOCKS = (3, 4, 6, 3)


def _is_backbone_key(key: str, arch: str) -> bool:
    """Whether ``key`` (without ``backbone.``) is an official detection
    backbone key of ``arch``."""
    match = _BACKBONE_PATTERNS[arch].fullmatch(key)
    if match is None:
        return False
    if arch == 'r50' and match.group('stage') is not None:
        stage = int(match.group('stage'))
        return int(match.group('block')) < _R50_BLOCKS[stage - 1]
    return True


def released_detector_type(state_dict: dict) -> str:
    """Return ``'MaskRCNN'`` if the state dict has a mask head, else
    ``'FasterRCNN'``."""
    if any(
            k.startswith('roi_head.mask_head.')
            for k in strip_prefix(state_dict, 'module.')):
        return 'MaskRCNN'
    return 'FasterRCNN'


def convert_released_detector(state_dict: dict, arch: str) -> dict:
    """Map a released ODConv MMDetection 2.x detector state dict to ours.

    The result loads with ``strict=True`` into the models of
    ``configs/odconv4x_{faster,mask}_rcnn_{r50,mbv2}_fpn_1x.py`` (backbones
    ``DynamicResNet(depth=50, preset='odconv4x')`` and
    ``DynamicMobileNetV2(widen_factor=1.0, preset='odconv4x',
    out_indices=(1, 2, 4, 7))``). The input is not modified; tensors are
    not copied.

    Args:
        state_dict (dict): ``checkpoint['state_dict']`` of a released
            checkpoint (a ``module.`` prefix on every key is accepted).
        arch (str): ``'r50'`` (OD-ResNet-50 4x) or ``'mbv2'``
            (OD-MobileNetV2 1.0 4x).

    Returns:
        dict: The converted state dict.

    Raises:
        KeyError: If there are keys outside the released layout (listed).
        ValueError: If ``arch`` is unknown, the input is a whole checkpoint
            rather than its state dict, or it has no backbone keys.
    """
    if arch not in BACKBONE_ARCHS:
        raise ValueError(f'Unknown arch {arch!r}; expected one of '
                         f'{sorted(BACKBONE_ARCHS)}.')
    if not isinstance(state_dict, dict):
        raise TypeError(f'state_dict must be a dict, got '
                        f'{type(state_dict).__name__}.')
    if isinstance(state_dict.get('state_dict'), dict):
        raise ValueError('Got a whole checkpoint; pass '
                         "checkpoint['state_dict'] instead.")
    state_dict = strip_prefix(state_dict, 'module.')

    backbone: dict = {}
    converted: dict = {}
    unknown: List[str] = []
    for key, value in state_dict.items():
        if key in CLASSIFIER_KEYS[arch]:
            continue
        if key.startswith('backbone.') and _is_backbone_key(
                key[len('backbone.'):], arch):
            backbone[key[len('backbone.'):]] = value
        elif any(p.fullmatch(key) for p in _HEAD_PATTERNS):
            converted[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(
            f'{len(unknown)} key(s) are not part of a released ODConv '
            f'Faster/Mask R-CNN ({arch}) checkpoint: '
            f'{format_listing(unknown)}')
    if not backbone:
        raise ValueError('No "backbone." keys found; this is not a released '
                         'ODConv detector checkpoint.')
    try:
        backbone = convert_official_state_dict(backbone, BACKBONE_ARCHS[arch])
    except KeyError as err:
        raise KeyError(f'"backbone." keys of the released {arch} detector: '
                       f'{err.args[0]}') from err
    converted.update({f'backbone.{k}': v for k, v in backbone.items()})
    return converted
