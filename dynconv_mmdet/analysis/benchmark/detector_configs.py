"""The detectors the ``detectors`` part times: our configs, each paired
with its static twin.

The configs come from ``configs/metafile.yml`` (every model's ``Config``),
or, without a metafile, from every ``configs/*.py``. Each config with a
dynamic or otherwise non-static backbone (a preset, a ``dynamic=`` layout,
mmcv's DCN) is paired with its *baseline*: the config whose model is the
same once the backbone's dynamic settings are removed, with a static
backbone. Instance-segmentation models (a mask head) are left out unless
named with ``--detectors``: they share their backbones with the box
detectors.
"""
import copy
import fnmatch
import glob
import json
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from mmdet.registry import MODELS
from mmengine.config import Config

#: Backbone keys that make a backbone dynamic (or deformable); removed to
#: find a config's static twin. ``init_cfg``, ``temperature`` and the
#: training-only drop path differ between twins without changing the
#: network that is timed.
NON_STATIC_KEYS = ('preset', 'dynamic', 'dcn', 'stage_with_dcn', 'conv_cfg')
IGNORED_KEYS = ('init_cfg', 'temperature', 'strict_pretrained',
                'freeze_shared_state', 'drop_path_rate')
#: The mobile input size, at which one-stage (real-time) detectors also run
#: their inference rows.
SMALL_SIZE = 320
#: ``--quick`` sizes: the config's size and the small size (128: mmcv's
#: DCN needs a last feature map of at least 3x3).
QUICK_SIZES = (128, 64)


@dataclass
class DetectorConfig:
    """One config: its model and the sizes its rows run at."""
    name: str
    path: str
    model: dict
    sizes: Tuple[int, ...]
    baseline: Optional[str] = None

    @property
    def one_stage(self) -> bool:
        return 'rpn_head' not in self.model and 'roi_head' not in self.model


def config_files(config_dir: str) -> List[str]:
    """The config files of the model zoo: those ``metafile.yml`` lists (its
    ``Config`` paths, relative to the repository root), else every
    ``*.py`` directly in ``config_dir``."""
    metafile = osp.join(config_dir, 'metafile.yml')
    if not osp.isfile(metafile):
        return sorted(glob.glob(osp.join(config_dir, '*.py')))
    import yaml
    with open(metafile) as f:
        meta = yaml.safe_load(f) or {}
    root = osp.dirname(osp.abspath(config_dir))
    paths = []
    for model in meta.get('Models', []):
        path = model.get('Config')
        if not path:
            continue
        for candidate in (path, osp.join(root, path),
                          osp.join(config_dir, osp.basename(path))):
            if osp.isfile(candidate):
                path = osp.abspath(candidate)
                break
        else:
            raise FileNotFoundError(
                f'{metafile}: model {model.get("Name")!r} lists Config '
                f'{path!r}, which does not exist; fix the metafile')
        if path not in paths:
            paths.append(path)
    return sorted(paths)


def walk(node: Any) -> Iterator[Any]:
    """``node`` and every dict value and list item below it."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from walk(value)


def pipeline_size(cfg: Config) -> int:
    """The square size a config's test pipeline resizes to: the shorter
    side of its ``Resize`` scale (Faster R-CNN's (1333, 800): 800; RTMDet's
    and YOLOX's (640, 640): 640)."""
    for node in walk(cfg.get('test_dataloader', {})):
        if isinstance(node, dict) and node.get('type') == 'Resize' and \
                node.get('scale') is not None:
            scale = node['scale']
            return min(scale) if isinstance(scale, (list, tuple)) else scale
    raise ValueError(f'{cfg.filename}: no Resize with a scale in the test '
                     'pipeline; give the size with --detector-size')


def _to_plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _to_plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_to_plain(v) for v in node)
    return node


def is_static(model: dict) -> bool:
    """Whether the model's backbone is static: no DCN, no ``dynamic=``,
    no ``conv_cfg`` other than a plain conv, and either no ``preset`` or
    the static preset of the backbone's own table."""
    backbone = model.get('backbone', {})
    if backbone.get('dcn') or backbone.get('dynamic'):
        return False
    conv_cfg = backbone.get('conv_cfg')
    if conv_cfg and conv_cfg.get('type') not in ('Conv', 'Conv2d'):
        return False
    preset = backbone.get('preset')
    if preset is None:
        return True
    presets = getattr(MODELS.get(backbone.get('type')), 'presets', {})
    return preset in presets and presets[preset] is None


def twin_key(model: dict) -> str:
    """The model with the backbone's dynamic settings removed (and a
    ``Dynamic`` backbone type named as the mmdet backbone it wraps):
    equal for a config and its static twin."""
    model = copy.deepcopy(model)
    backbone = model.get('backbone', {})
    for key in NON_STATIC_KEYS + IGNORED_KEYS:
        backbone.pop(key, None)
    kind = backbone.get('type', '')
    if isinstance(kind, str) and kind.startswith('Dynamic'):
        backbone['type'] = kind[len('Dynamic'):]
    return json.dumps(model, sort_keys=True, default=repr)


def load_config(path: str,
                sizes: Optional[Sequence[int]] = None,
                quick: bool = False) -> DetectorConfig:
    """One config with its model and sizes (``sizes`` overrides them;
    ``quick``: tiny sizes)."""
    cfg = Config.fromfile(path)
    if 'model' not in cfg:
        raise ValueError(f'{path} has no model')
    det = DetectorConfig(
        osp.splitext(osp.basename(path))[0], path,
        _to_plain(cfg.model.to_dict()), ())
    if sizes:
        det.sizes = tuple(sizes)
    elif quick:
        det.sizes = QUICK_SIZES if det.one_stage else QUICK_SIZES[:1]
    else:
        size = pipeline_size(cfg)
        det.sizes = (size, SMALL_SIZE) if det.one_stage and \
            size > SMALL_SIZE else (size, )
    return det


def has_mask_head(model: dict) -> bool:
    return any(
        isinstance(node, dict) and 'mask_head' in node for node in walk(model))


def _name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def _matches(path: str, patterns: Sequence[str]) -> bool:
    return any(
        fnmatch.fnmatch(_name(path), p)
        or fnmatch.fnmatch(osp.basename(path), p) for p in patterns)


def _shared_suffix(a: str, b: str) -> int:
    return len(osp.commonprefix([a[::-1], b[::-1]]))


def select(config_dir: str,
           patterns: Optional[Sequence[str]] = None,
           presets: Optional[Sequence[str]] = None,
           sizes: Optional[Sequence[int]] = None,
           quick: bool = False) -> Tuple[Dict, List[str]]:
    """Pair the selected non-static configs with their baselines.

    Args:
        config_dir: The configs (:func:`config_files`).
        patterns: ``fnmatch`` patterns of config names (with or without
            ``.py``); default: every config without a mask head.
        presets: Keep only configs whose backbone preset is one of these
            (configs without a preset, e.g. DCN, are kept).
        sizes, quick: As :func:`load_config`.

    Returns:
        tuple[dict, list[str]]: ``baseline name -> (baseline, [configs])``
        in config order, and notes on configs left out.
    """
    files = config_files(config_dir)
    loaded: Dict[str, DetectorConfig] = {}

    def load(path: str) -> DetectorConfig:
        if path not in loaded:
            loaded[path] = load_config(path, sizes, quick)
        return loaded[path]

    def baseline(cfg: DetectorConfig) -> Optional[DetectorConfig]:
        # configs are parsed lazily, the likeliest twin (the longest shared
        # name ending) first
        key = twin_key(cfg.model)
        for path in sorted(
                files, key=lambda f: -_shared_suffix(_name(f), cfg.name)):
            other = load(path)
            if is_static(other.model) and twin_key(other.model) == key:
                return other
        return None

    groups: Dict[str, Tuple[DetectorConfig, List[DetectorConfig]]] = {}
    notes = []
    for path in files:
        if patterns and not _matches(path, patterns):
            continue
        cfg = load(path)
        if is_static(cfg.model) or (not patterns and has_mask_head(cfg.model)):
            continue
        preset = cfg.model.get('backbone', {}).get('preset')
        if presets is not None and preset is not None and \
                preset not in presets:
            continue
        base = baseline(cfg)
        if base is None:
            notes.append(f'{cfg.name}: no static config of the same '
                         'detector; not timed')
            continue
        cfg.baseline = base.name
        groups.setdefault(base.name, (base, []))[1].append(cfg)
    return groups, notes
