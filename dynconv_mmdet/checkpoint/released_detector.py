# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Convert the authors' released COCO detectors (MMDetection 2.x).

Three releases trained Faster R-CNN / Mask R-CNN with FPN on COCO in
MMDetection 2.x:

* **ODConv** (github OSVAI/ODConv, ``object_detection/``): ``OD_ResNet``
  and ``OD_MobileNetV2`` with ``kernel_num=4`` and ``reduction=0.0625``
  (ODConv 4x), Faster and Mask R-CNN;
* **KernelWarehouse** (github OSVAI/KernelWarehouse, ``detection/``):
  ``KW_ResNet`` (depth 50) and ``KW_MobileNetV2`` (width 1.0) with
  ``cell_num_ratio`` 1 or 4 (KW 1x / 4x), Mask R-CNN;
* **FDConv** (github Linwei-Chen/FDConv, ``FDConv_detection/``, mmdet
  2.28): ``ResNet_FDConv`` (depth 50, every block conv an ``FDConv`` with
  ``kernel_num=64``), Faster R-CNN (mmdet's 1x) and Mask R-CNN (its AdamW
  recipe).

Their state dicts are laid out as follows:

* ``backbone.*``: the *classification* module names of the released
  ImageNet models, including their ImageNet classifier, which the detection
  backbones still construct but never call (``fc.{weight,bias}`` for the
  ResNets; ``classifier.1.{weight,bias}`` for OD-MobileNetV2,
  ``classifier.{weight,bias}`` for KW-MobileNetV2). The classifier is
  dropped; the rest is mapped by the release's backbone key map
  (:func:`~.key_maps.official.convert_official_state_dict`,
  :func:`~.key_maps.kernel_warehouse.convert_kernel_warehouse_state_dict`:
  KW warehouses by index, ``backbone.warehouse_manager.weights.<i>``).
  FDConv's ``ResNet_FDConv`` is mmdet's ResNet (no classifier) whose
  FDConvs keep the release's parameter names in ours: its keys map as they
  are, each checked (:func:`~.key_maps.fdconv.convert_fdconv_state_dict`).
* ``neck.*``, ``rpn_head.*``, ``roi_head.*``: MMDetection 2.x ``FPN``,
  ``RPNHead``, ``StandardRoIHead`` with ``Shared2FCBBoxHead`` (and
  ``FCNMaskHead``). Their parameter names (and the background-last class
  order of ``fc_cls``) are unchanged in MMDetection 3.x, so they are kept
  as they are, after checking each against the known names.

Any other key raises, so a checkpoint of another layout is never loaded
half-way. One table, :data:`RELEASED_DETECTORS`, describes each layout.

Sources: the releases' ``object_detection/configs/odconv/*.py``,
``object_detection/mmdet/models/backbones/od_{resnet,mobilenetv2}.py``,
``detection/configs/kernelwarehouse/*/*.py``,
``detection/mmdet/models/backbones/kw_{resnet,mobilenetv2}.py``,
``FDConv_detection/configs/{faster,mask}_rcnn/*_FDConv.py`` and
``FDConv_detection/mmdet_custom/{resnet,FDConv}.py``.
"""
import re
from typing import Callable, Dict, List, NamedTuple, Optional, Pattern, Tuple

from ..utils.formatting import format_listing
from .key_maps.fdconv import FDCONV_LEAF
from .key_maps.releases import (FDCONV_RELEASE, KW_RELEASE, ODCONV_RELEASE,
                                recognise_release)
from .keys import StateDict, strip_prefix

_ODCONV = ODCONV_RELEASE.name
_KW = KW_RELEASE.name
_FDCONV = FDCONV_RELEASE.name

# Parameter / buffer names relative to a module of a released backbone.
# (``_BN`` alone: a static conv's weight or a norm.)
_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
_OD_LEAF = (rf'({_BN}|attention\.fc\.weight|attention\.bn\.{_BN}'
            r'|attention\.(channel_fc|filter_fc|spatial_fc|kernel_fc)'
            r'\.(weight|bias))')
_KW_LEAF = (rf'({_BN}|attention\.norm1\.{_BN}'
            r'|attention\.(fc1|fc2|fc3)\.(weight|bias)'
            r'|attention\.basis_bias)')
_KW_WAREHOUSE = r'|warehouse_manager\.weights\.\d+'
_FD_LEAF = rf'({_BN}|{FDCONV_LEAF})'
# What tells each release's backbone from the official ODConv layout, for
# the message when a detector is converted as another release's.
_RELEASE_MARKS = {
    _KW: 'KernelWarehouse warehouses (backbone.warehouse_manager.'
    'weights.<i>)',
    _FDCONV: 'FDConv spectra (backbone.<conv>.dft_weight)',
}


def _resnet_pattern(leaf: str, extra: str = '') -> Pattern:
    return re.compile(r'(conv1|bn1|layer(?P<stage>[1-4])\.(?P<block>\d+)\.'
                      rf'(conv[1-3]|bn[1-3]|downsample\.[01]))\.{leaf}'
                      f'{extra}')


def _mobilenet_v2_pattern(leaf: str, extra: str = '') -> Pattern:
    # the feature indices are checked by the backbone key map
    return re.compile(rf'features\.\d+\.(\d+\.|conv\.\d+\.(\d+\.)?){leaf}'
                      f'{extra}')


class ReleasedDetectorLayout(NamedTuple):
    """The ``backbone.`` layout of one release's detectors.

    Attributes:
        release (str): ``'odconv'``, ``'kw'`` or ``'fdconv'`` (the names of
            :data:`~.key_maps.releases.RELEASE_KEY_MAPS`).
        arch (str): ``'r50'`` or ``'mbv2'``.
        backbone (str): What the release trained, for messages.
        backbone_arch (str): ``pretrained_arch`` of our backbone.
        classifier_keys (tuple[str]): The unused ImageNet classifier.
        pattern (Pattern): Full match of a backbone key (``backbone.``
            removed, classifier excluded).
        to_backbone (callable): ``(state_dict, backbone_arch) ->
            state_dict``: released backbone keys -> ours.
        configs (str): Our configs that the result loads into.
    """
    release: str
    arch: str
    backbone: str
    backbone_arch: str
    classifier_keys: Tuple[str, ...]
    pattern: Pattern
    to_backbone: Callable[[StateDict, str], StateDict]
    configs: str


#: ``(release, arch) -> layout`` of every released detector family.
RELEASED_DETECTORS: Dict[Tuple[str, str], ReleasedDetectorLayout] = {
    (_ODCONV, 'r50'):
    ReleasedDetectorLayout(
        release=_ODCONV,
        arch='r50',
        backbone='OD-ResNet-50 4x',
        backbone_arch='resnet',
        classifier_keys=('backbone.fc.weight', 'backbone.fc.bias'),
        pattern=_resnet_pattern(_OD_LEAF),
        to_backbone=ODCONV_RELEASE.key_map.to_backbone,
        configs='configs/odconv4x_{faster,mask}_rcnn_r50_fpn_1x.py'),
    (_ODCONV, 'mbv2'):
    ReleasedDetectorLayout(
        release=_ODCONV,
        arch='mbv2',
        backbone='OD-MobileNetV2 1.0 4x',
        backbone_arch='mobilenet_v2',
        classifier_keys=('backbone.classifier.1.weight',
                         'backbone.classifier.1.bias'),
        pattern=_mobilenet_v2_pattern(_OD_LEAF),
        to_backbone=ODCONV_RELEASE.key_map.to_backbone,
        configs='configs/odconv4x_{faster,mask}_rcnn_mbv2_fpn_1x.py'),
    (_KW, 'r50'):
    ReleasedDetectorLayout(
        release=_KW,
        arch='r50',
        backbone='KW-ResNet-50 1x / 4x',
        backbone_arch='resnet',
        classifier_keys=('backbone.fc.weight', 'backbone.fc.bias'),
        pattern=_resnet_pattern(_KW_LEAF, _KW_WAREHOUSE),
        to_backbone=KW_RELEASE.key_map.to_backbone,
        configs='configs/kw{1,4}x_mask_rcnn_r50_fpn_{adamw_,}1x.py'),
    (_KW, 'mbv2'):
    ReleasedDetectorLayout(
        release=_KW,
        arch='mbv2',
        backbone='KW-MobileNetV2 1.0 1x / 4x',
        backbone_arch='mobilenet_v2',
        classifier_keys=('backbone.classifier.weight',
                         'backbone.classifier.bias'),
        pattern=_mobilenet_v2_pattern(_KW_LEAF, _KW_WAREHOUSE),
        to_backbone=KW_RELEASE.key_map.to_backbone,
        configs='configs/kw{1,4}x_mask_rcnn_mbv2_fpn_{adamw_,}1x.py'),
    (_FDCONV, 'r50'):
    ReleasedDetectorLayout(
        release=_FDCONV,
        arch='r50',
        backbone='FDConv ResNet-50',
        backbone_arch='resnet',
        classifier_keys=(),
        pattern=_resnet_pattern(_FD_LEAF),
        to_backbone=FDCONV_RELEASE.key_map.to_backbone,
        configs='configs/fdconv_faster_rcnn_r50_fpn_1x.py, configs/'
        'fdconv_mask_rcnn_r50_fpn_{release-recipe_adamw_,}1x.py'),
}

#: The releases, as :func:`convert_released_detector` names them.
RELEASES: Tuple[str, ...] = tuple(
    sorted({release
            for release, _ in RELEASED_DETECTORS}))

#: ``arch`` of :func:`convert_released_detector` -> ``arch`` of the backbone
#: key maps.
BACKBONE_ARCHS: Dict[str, str] = {
    arch: layout.backbone_arch
    for (release, arch), layout in RELEASED_DETECTORS.items()
    if release == _ODCONV
}

#: Keys of the unused ImageNet classifier inside the released ODConv
#: backbones (KW: :data:`RELEASED_DETECTORS`).
CLASSIFIER_KEYS: Dict[str, Tuple[str, ...]] = {
    arch: layout.classifier_keys
    for (release, arch), layout in RELEASED_DETECTORS.items()
    if release == _ODCONV
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
_R50_BLOCKS = (3, 4, 6, 3)


def _is_backbone_key(key: str, layout: ReleasedDetectorLayout) -> bool:
    """Whether ``key`` (without ``backbone.``) is a released detection
    backbone key of ``layout``."""
    match = layout.pattern.fullmatch(key)
    if match is None:
        return False
    if layout.arch == 'r50' and match.group('stage') is not None:
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


def released_detector_release(state_dict: dict) -> str:
    """The release whose key map recognises the backbone first
    (:func:`~.key_maps.releases.recognise_release`): ``'kw'`` if it holds
    KernelWarehouse warehouses, ``'fdconv'`` if it holds FDConv spectra,
    else ``'odconv'``."""
    backbone = strip_prefix(
        strip_prefix(state_dict, 'module.'), 'backbone.', only=True)
    archs: Dict[str, List[str]] = {}
    for layout in RELEASED_DETECTORS.values():
        archs.setdefault(layout.release, []).append(layout.backbone_arch)
    return recognise_release(backbone, archs)


def released_detector_layout(arch: str,
                             release: str) -> ReleasedDetectorLayout:
    """The layout of ``release``'s ``arch`` detectors.

    Raises:
        ValueError: An unknown ``arch`` or ``release``.
    """
    if release not in RELEASES:
        raise ValueError(f'Unknown release {release!r}; expected one of '
                         f'{list(RELEASES)}.')
    arches = sorted(a for r, a in RELEASED_DETECTORS if r == release)
    if arch not in arches:
        raise ValueError(f'Unknown arch {arch!r}; expected one of {arches}.')
    return RELEASED_DETECTORS[release, arch]


def convert_released_detector(state_dict: dict,
                              arch: str,
                              release: Optional[str] = None) -> dict:
    """Map a released MMDetection 2.x detector state dict to ours.

    The result loads with ``strict=True`` into the models of the configs
    named by the layout (:data:`RELEASED_DETECTORS`): for ODConv
    ``configs/odconv4x_{faster,mask}_rcnn_{r50,mbv2}_fpn_1x.py``
    (``DynamicResNet(depth=50, preset='odconv4x')``,
    ``DynamicMobileNetV2(widen_factor=1.0, preset='odconv4x')``), for
    KernelWarehouse ``configs/kw{1,4}x_mask_rcnn_{r50,mbv2}_fpn_*1x.py``
    (presets ``kw1x`` / ``kw4x``, the released ``cell_num_ratio``), for
    FDConv ``configs/fdconv_faster_rcnn_r50_fpn_1x.py`` and
    ``configs/fdconv_mask_rcnn_r50_fpn_*1x.py`` (preset ``fdconv``). The
    input is not modified; tensors are not copied.

    Args:
        state_dict (dict): ``checkpoint['state_dict']`` of a released
            checkpoint (a ``module.`` prefix on every key is accepted).
        arch (str): ``'r50'`` (ResNet-50) or ``'mbv2'`` (MobileNetV2 1.0;
            not released with FDConv).
        release (str, optional): ``'odconv'``, ``'kw'`` or ``'fdconv'``;
            default: ``'kw'`` if the backbone holds KernelWarehouse
            warehouses (``backbone.warehouse_manager.weights.<i>``),
            ``'fdconv'`` if it holds FDConv spectra
            (``backbone.<conv>.dft_weight``), else ``'odconv'``.

    Returns:
        dict: The converted state dict.

    Raises:
        KeyError: If there are keys outside the released layout (listed).
        ValueError: If ``arch`` or ``release`` is unknown, the input is a
            whole checkpoint rather than its state dict, has no backbone
            keys, or is a detector of another release.
    """
    if not isinstance(state_dict, dict):
        raise TypeError(f'state_dict must be a dict, got '
                        f'{type(state_dict).__name__}.')
    if isinstance(state_dict.get('state_dict'), dict):
        raise ValueError('Got a whole checkpoint; pass '
                         "checkpoint['state_dict'] instead.")
    state_dict = strip_prefix(state_dict, 'module.')
    found = released_detector_release(state_dict)
    layout = released_detector_layout(arch, release or found)
    if release is not None and release != found and any(
            k.startswith('backbone.') for k in state_dict):
        if found in _RELEASE_MARKS:
            holds = f'holds {_RELEASE_MARKS[found]}'
        else:
            holds = f'holds no {_RELEASE_MARKS[layout.release]}'
        raise ValueError(
            f'this is not a released {layout.backbone} detector: its '
            f'backbone {holds}; convert it with release={found!r}.')

    backbone: dict = {}
    converted: dict = {}
    unknown: List[str] = []
    for key, value in state_dict.items():
        if key in layout.classifier_keys:
            continue
        if key.startswith('backbone.') and _is_backbone_key(
                key[len('backbone.'):], layout):
            backbone[key[len('backbone.'):]] = value
        elif any(p.fullmatch(key) for p in _HEAD_PATTERNS):
            converted[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(
            f'{len(unknown)} key(s) are not part of a released '
            f'{layout.backbone} Faster/Mask R-CNN ({arch}) checkpoint: '
            f'{format_listing(unknown)}')
    if not backbone:
        raise ValueError('No "backbone." keys found; this is not a released '
                         f'{layout.backbone} detector checkpoint.')
    try:
        backbone = layout.to_backbone(backbone, layout.backbone_arch)
    except KeyError as err:
        raise KeyError(f'"backbone." keys of the released {arch} detector: '
                       f'{err.args[0]}') from err
    converted.update({f'backbone.{k}': v for k, v in backbone.items()})
    return converted
