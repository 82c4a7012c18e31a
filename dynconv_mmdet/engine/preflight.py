# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Start-up checks run by ``tools/train.py`` and ``tools/test.py``.

Building an mmengine ``Runner`` and starting the data loaders takes a while,
and many configuration mistakes only surface much later, deep inside a
worker process (a missing image in the middle of an epoch, a typo in a
``conv_cfg`` type, a backbone checkpoint that was never downloaded). The
checks here look at the configuration before anything is built and raise a
single :class:`PreflightError` that lists every problem found, each with what
to do about it.
"""
import os.path as osp
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

from mmengine.config import Config
from mmengine.registry import DefaultScope

from ..models.layers.conv_types import (is_known_conv_type,
                                        registered_conv_types)

_CONV_KEYS = ('conv_cfg', 'dcn')
_DATALOADER_KEYS = {
    'train': 'train_dataloader',
    'val': 'val_dataloader',
    'test': 'test_dataloader',
}
_EVALUATOR_KEYS = {'val': 'val_evaluator', 'test': 'test_evaluator'}
_SCRATCH_HINT = ('To train from scratch instead, pass `--cfg-options '
                 '{key}=None` to tools/train.py.')


class PreflightError(ValueError):
    """A configuration problem found before the runner is built.

    The message lists every problem found, one per line, each with a hint on
    how to fix it.
    """


def _walk(node: Any, path: str) -> Iterator[Tuple[str, Any]]:
    """Yield ``(dotted_path, value)`` for every dict / list entry below
    ``node`` (depth first, the node itself included)."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for idx, value in enumerate(node):
            yield from _walk(value, f'{path}[{idx}]')


def _import_custom_modules(cfg: Config) -> None:
    """Import ``cfg.custom_imports`` (the runner would do it later anyway) so
    that the plugin's layers are registered before they are looked up."""
    custom_imports = cfg.get('custom_imports', None)
    if custom_imports:
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**custom_imports)


def _conv_type_known(type_name: str) -> bool:
    """Whether ``build_conv_layer`` resolves the type in mmdet's scope."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        return is_known_conv_type(type_name)


def check_conv_types(model_cfg: Optional[dict],
                     prefix: str = 'model') -> List[str]:
    """Find ``conv_cfg`` / ``dcn`` entries that name an unregistered layer.

    Args:
        model_cfg (dict, optional): The model config (``cfg.model``).
        prefix (str): Dotted name of ``model_cfg`` used in the messages.

    Returns:
        list[str]: One message per unknown type (empty if all are known).
    """
    if not model_cfg:
        return []
    problems = []
    known = None
    for path, node in _walk(model_cfg, prefix):
        if not isinstance(node, dict):
            continue
        for key in _CONV_KEYS:
            conv = node.get(key)
            if not isinstance(conv, dict) or 'type' not in conv:
                continue
            type_name = conv['type']
            if isinstance(type_name, str) and _conv_type_known(type_name):
                continue
            if known is None:
                with DefaultScope.overwrite_default_scope('mmdet'):
                    known = registered_conv_types()
            problems.append(
                f'{path}.{key}: unknown conv layer type {type_name!r}. '
                f'Registered conv types: {", ".join(known)}. Check the '
                'spelling, or add the module that registers it to '
                '`custom_imports`.')
    return problems


def _is_local_path(checkpoint: str) -> bool:
    return '://' not in checkpoint and not checkpoint.startswith(
        ('http:', 'https:', 's3:'))


def _checkpoint_hint(checkpoint: str) -> str:
    """How to obtain a missing backbone checkpoint."""
    name = osp.basename(checkpoint)
    return (f'Get it by training the ImageNet backbone with the '
            f'classification project (projects/classification, see its '
            f'README) and exporting its checkpoint to {checkpoint!r} with '
            f'tools/model_converters/export_cls_backbone.py, or by '
            f'converting the official ODConv release (github.com/OSVAI/'
            f'ODConv) with tools/model_converters/'
            f'odconv_official_to_backbone.py, writing {name!r} there.')


def check_pretrained(model_cfg: Optional[dict],
                     prefix: str = 'model') -> List[str]:
    """Find ``Pretrained`` initialisations that point at a missing local
    file.

    Remote checkpoints (``torchvision://``, ``open-mmlab://``, ``http(s)``)
    are left to mmengine, which downloads them.

    Args:
        model_cfg (dict, optional): The model config (``cfg.model``).
        prefix (str): Dotted name of ``model_cfg`` used in the messages.

    Returns:
        list[str]: One message per missing checkpoint.
    """
    if not model_cfg:
        return []
    problems = []
    for path, node in _walk(model_cfg, prefix):
        if not isinstance(node, dict) or node.get('type') != 'Pretrained':
            continue
        end = path.rfind('.init_cfg')
        if end < 0:
            continue
        checkpoint = node.get('checkpoint')
        if not isinstance(checkpoint, str) or not _is_local_path(checkpoint):
            continue
        if osp.isfile(checkpoint):
            continue
        init_key = path[:end + len('.init_cfg')]
        problems.append(
            f'{path}: pretrained checkpoint {checkpoint!r} does not exist. '
            f'{_checkpoint_hint(checkpoint)} ' +
            _SCRATCH_HINT.format(key=init_key))
    return problems


def _unwrap_dataset(dataset_cfg: dict) -> List[dict]:
    """The leaf dataset configs inside wrappers (RepeatDataset,
    ClassBalancedDataset, ConcatDataset, MultiImageMixDataset, ...)."""
    if 'datasets' in dataset_cfg:
        leaves = []
        for sub in dataset_cfg['datasets']:
            leaves.extend(_unwrap_dataset(sub))
        return leaves
    if isinstance(dataset_cfg.get('dataset'), dict):
        return _unwrap_dataset(dataset_cfg['dataset'])
    return [dataset_cfg]


def _join(root: Optional[str], path: Optional[str]) -> Optional[str]:
    if path is None:
        return None
    if root and not osp.isabs(path) and '://' not in path:
        return osp.join(root, path)
    return path


def _dataset_classes(leaf: dict) -> Optional[Sequence[str]]:
    """The class names a dataset config selects: ``metainfo.classes``, else
    those of its dataset class (``METAINFO``), looked up in mmdet's scope."""
    metainfo = leaf.get('metainfo') or {}
    if metainfo.get('classes') is not None:
        classes = metainfo['classes']
        return [classes] if isinstance(classes, str) else list(classes)
    type_name = leaf.get('type')
    if not isinstance(type_name, str):
        return None
    from mmdet.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset_cls = DATASETS.get(type_name)
    classes = getattr(dataset_cls, 'METAINFO', {}).get('classes')
    return list(classes) if classes else None


def _data_check_options(cfg: Config) -> Tuple[bool, List[str]]:
    """``ignore_unlisted_categories`` from the config's ``data_check``
    options, and the problems with them (unknown keys, not a bool)."""
    from dynconv_mmdet.datasets.validation import (DATA_CHECK_KEY,
                                                   IGNORE_UNLISTED_CATEGORIES)
    options = cfg.get(DATA_CHECK_KEY, None)
    if options is None:
        return False, []
    if not isinstance(options, dict):
        return False, [
            f'{DATA_CHECK_KEY}: must be a dict, e.g. `{DATA_CHECK_KEY} = '
            f'dict({IGNORE_UNLISTED_CATEGORIES}=True)`, got '
            f'{type(options).__name__}.'
        ]
    problems = []
    unknown = sorted(set(options) - {IGNORE_UNLISTED_CATEGORIES})
    if unknown:
        problems.append(
            f'{DATA_CHECK_KEY}: unknown option(s) {", ".join(unknown)}; the '
            f'known option is {IGNORE_UNLISTED_CATEGORIES} (True or False).')
    ignore = options.get(IGNORE_UNLISTED_CATEGORIES, False)
    if not isinstance(ignore, bool):
        problems.append(
            f'{DATA_CHECK_KEY}.{IGNORE_UNLISTED_CATEGORIES} must be True or '
            f'False, got {ignore!r}.')
        ignore = False
    return ignore, problems


def check_dataset(dataset_cfg: dict,
                  name: str,
                  check_images: Union[bool, str, None] = True,
                  ignore_unlisted_categories: bool = False) -> List[str]:
    """Check the files a COCO-style dataset config refers to.

    Checks that ``data_root`` exists, that ``ann_file`` exists, parses and
    has the COCO fields, that the dataset's classes are category names of
    the file (in its order) and that no other category has annotations,
    that the split is not empty (nor emptied by the dataset's
    ``filter_cfg``), and that the images it lists exist under
    ``data_prefix['img']``, decode, and have the file's ``width`` /
    ``height`` as the pipeline's loader decodes them (EXIF orientation) (see
    :func:`dynconv_mmdet.datasets.validation.check_coco_annotations`).

    Args:
        dataset_cfg (dict): A dataset config (wrappers are looked through).
        name (str): Dotted name of the config used in the messages.
        check_images (bool or str or None): How to check the listed images:
            ``'none'``, ``'exists'``, ``'header'`` (default) or ``'full'``
            (see :func:`dynconv_mmdet.datasets.validation.image_check_mode`;
            True / None: the environment variable ``DYNCONV_CHECK_IMAGES``,
            else ``'header'``).
        ignore_unlisted_categories (bool): Let categories the dataset's
            classes do not list have annotations (mmdet drops them);
            refused by default. ``check_config`` takes it from the config's
            ``data_check = dict(ignore_unlisted_categories=True)``.

    Returns:
        list[str]: One message per problem.
    """
    from dynconv_mmdet.datasets.validation import (
        check_coco_annotations, pipeline_applies_exif_orientation)

    problems = []
    for leaf in _unwrap_dataset(dataset_cfg):
        if leaf.get('backend_args'):
            continue  # remote storage (petrel, ...): not checkable here
        data_root = leaf.get('data_root') or ''
        if data_root and not osp.isdir(data_root):
            problems.append(
                f'{name}: data_root {data_root!r} does not exist. Download '
                'or link the data set there (for the toy set: python '
                f'tools/misc/generate_toy_coco.py --out {data_root}), or '
                f'set `{name}.data_root`.')
            continue
        ann_file = _join(data_root, leaf.get('ann_file'))
        if not ann_file:
            continue
        prefix = leaf.get('data_prefix') or {}
        img_dir = prefix.get('img', prefix.get('img_path'))
        img_dir = _join(data_root, img_dir) if img_dir is not None else None
        filter_cfg = None if leaf.get('test_mode') else leaf.get('filter_cfg')
        try:
            check_coco_annotations(
                ann_file,
                img_dir,
                check_images=check_images,
                classes=_dataset_classes(leaf),
                filter_cfg=filter_cfg,
                ignore_unlisted_categories=ignore_unlisted_categories,
                exif_orientation=pipeline_applies_exif_orientation(
                    leaf.get('pipeline')))
        except (OSError, ValueError) as err:
            problems.append(f'{name}: {err}')
    return problems


def check_config(cfg: Config,
                 splits: Sequence[str] = ('train', 'val'),
                 check_images: Union[bool, str, None] = True,
                 check_checkpoints: bool = True,
                 ignore_unlisted_categories: Optional[bool] = None) -> None:
    """Check a config before the runner is built.

    Looks for: conv layer types (``conv_cfg`` / ``dcn`` anywhere in the
    model) that are not registered; ``Pretrained`` initialisations pointing
    at a local file that does not exist; and, for every dataloader in
    ``splits`` and its evaluator, a missing data root, an annotation file
    that is missing, is not JSON or lacks the COCO fields, class names that
    are not the file's category names, annotations of categories the config
    does not list (mmdet would drop them), an empty split, and image files
    listed in the annotations but absent, undecodable, or of another size
    than the annotations say (e.g. EXIF-rotated photos).

    Args:
        cfg (Config): The fully merged config.
        splits (Sequence[str]): Which of ``'train'``, ``'val'`` and
            ``'test'`` dataloaders to check. Defaults to train and val
            (what ``Runner.train`` builds).
        check_images (bool or str or None): How to check every annotated
            image: ``'none'``, ``'exists'``, ``'header'`` or ``'full'``;
            True / None: the environment variable ``DYNCONV_CHECK_IMAGES``,
            else ``'header'`` (see
            :func:`dynconv_mmdet.datasets.validation.image_check_mode`).
        check_checkpoints (bool): Check local ``Pretrained`` checkpoints
            (only needed when the weights are initialised, i.e. training).
        ignore_unlisted_categories (bool, optional): Let categories the
            config's classes do not list have annotations (mmdet drops
            them). None (default): the config's ``data_check =
            dict(ignore_unlisted_categories=True)`` if set, else False
            (refused, naming the categories and their box counts).

    Raises:
        PreflightError: Listing every problem found.
    """
    _import_custom_modules(cfg)
    import mmdet.models  # noqa: F401  (registers mmdet's layers)

    from dynconv_mmdet.datasets.validation import image_check_mode
    from dynconv_mmdet.models.checks import neck_backbone_problems

    model_cfg = cfg.get('model', None)
    problems = check_conv_types(model_cfg)
    if model_cfg is not None:
        problems += neck_backbone_problems(model_cfg)
    if check_checkpoints:
        problems += check_pretrained(model_cfg)
    try:
        check_images = image_check_mode(check_images)
    except ValueError as err:
        problems.append(str(err))
        check_images = 'exists'
    from_cfg, option_problems = _data_check_options(cfg)
    problems += option_problems
    if ignore_unlisted_categories is None:
        ignore_unlisted_categories = from_cfg

    checked_ann_files = set()
    for split in splits:
        key = _DATALOADER_KEYS[split]
        loader = cfg.get(key, None)
        if not loader or not isinstance(loader.get('dataset'), dict):
            continue
        for leaf in _unwrap_dataset(loader['dataset']):
            ann = _join(leaf.get('data_root'), leaf.get('ann_file'))
            checked_ann_files.add(ann and osp.normpath(ann))
        problems += check_dataset(
            loader['dataset'],
            f'{key}.dataset',
            check_images=check_images,
            ignore_unlisted_categories=ignore_unlisted_categories)
        evaluators = cfg.get(_EVALUATOR_KEYS.get(split, ''), None)
        if isinstance(evaluators, dict):
            evaluators = [evaluators]
        for idx, evaluator in enumerate(evaluators or []):
            ann_file = evaluator.get('ann_file')
            if not ann_file or '://' in ann_file:
                continue
            if osp.normpath(ann_file) in checked_ann_files:
                continue
            if not osp.isfile(ann_file):
                problems.append(
                    f'{_EVALUATOR_KEYS[split]}: ann_file {ann_file!r} does '
                    'not exist; it should be the annotation file of '
                    f'{key}.dataset.')

    load_from = cfg.get('load_from', None)
    if isinstance(load_from, str) and _is_local_path(load_from) \
            and not osp.isfile(load_from):
        problems.append(
            f'load_from: checkpoint {load_from!r} does not exist (it is the '
            'checkpoint given to tools/test.py or `--resume`, or '
            '`load_from` in the config).')

    if problems:
        lines = '\n'.join(f'  - {p}' for p in problems)
        raise PreflightError(
            f'{len(problems)} problem(s) found in the config before '
            f'start-up:\n{lines}')


__all__ = [
    'PreflightError', 'check_config', 'check_conv_types', 'check_pretrained',
    'check_dataset', 'registered_conv_types'
]
