# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Checks of a COCO-format annotation file against itself and the config.

The file must parse and have the COCO fields, its ids must be unique and
refer to each other, its boxes must be ``[x, y, w, h]``; the config's
classes (``metainfo.classes``) must be category names of the file in its
order, and no category the config does not list may have annotations:
mmdet's ``CocoDataset`` drops those boxes without a word, so this is refused
unless the config says ``data_check = dict(ignore_unlisted_categories=True)``
(:data:`DATA_CHECK_KEY`, :data:`IGNORE_UNLISTED_CATEGORIES`). The split must
have images, and keep some after the dataset's ``filter_cfg``. The image
files are then checked by :mod:`.images`.
"""
import json
import os.path as osp
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Union

from ...utils.formatting import format_listing
from ._common import fmt_list, is_number
from .images import check_image_files, image_check_mode

_TOP_LEVEL_KEYS = ('images', 'annotations', 'categories')
_REQUIRED_FIELDS: Dict[str, Sequence[str]] = {
    'images': ('id', 'file_name', 'width', 'height'),
    'annotations': ('id', 'image_id', 'category_id', 'bbox'),
    'categories': ('id', 'name'),
}

#: Top-level config key with the options of the start-up data check.
DATA_CHECK_KEY = 'data_check'
#: Its option that lets categories the config does not list keep
#: annotations (mmdet then drops them): ``data_check =
#: dict(ignore_unlisted_categories=True)``.
IGNORE_UNLISTED_CATEGORIES = 'ignore_unlisted_categories'
_OPT_OUT = (f'`{DATA_CHECK_KEY} = dict({IGNORE_UNLISTED_CATEGORIES}=True)` '
            'in the config (or `--cfg-options '
            f'{DATA_CHECK_KEY}.{IGNORE_UNLISTED_CATEGORIES}=True`)')


def _load_json(ann_file: str) -> Any:
    if not osp.isfile(ann_file):
        raise FileNotFoundError(
            f'COCO annotation file {ann_file!r} does not exist. Check '
            '`ann_file` / `data_root` in the dataset config (or generate the '
            'toy set with tools/misc/generate_toy_coco.py).')
    try:
        with open(ann_file, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(
            f'COCO annotation file {ann_file!r} is not valid JSON: {e.msg} '
            f'at line {e.lineno}, column {e.colno} (char {e.pos}).') from e
    except UnicodeDecodeError as e:
        raise ValueError(f'COCO annotation file {ann_file!r} is not UTF-8 '
                         f'text: {e}.') from e


def _check_entries(ann_file: str, data: dict, key: str) -> None:
    """Check that ``data[key]`` is a list of dicts with the required
    fields."""
    entries = data[key]
    if not isinstance(entries, list):
        raise ValueError(f'{ann_file!r}: "{key}" must be a list, got '
                         f'{type(entries).__name__}.')
    required = _REQUIRED_FIELDS[key]
    bad = []
    for idx, entry in enumerate(entries):
        if not isinstance(entry, dict):
            bad.append(f'#{idx} is a {type(entry).__name__}, not an object')
            continue
        missing = [f for f in required if f not in entry]
        if missing:
            ident = f' (id={entry["id"]!r})' if 'id' in entry else ''
            bad.append(f'#{idx}{ident} lacks {", ".join(missing)}')
    if bad:
        raise ValueError(
            f'{ann_file!r}: {len(bad)} of {len(entries)} "{key}" entries are '
            f'malformed (each needs {", ".join(required)}): '
            f'{format_listing(bad, sep="; ")}.')


def _check_unique_ids(ann_file: str, entries: List[dict], key: str) -> None:
    seen, dups = set(), []
    for entry in entries:
        if entry['id'] in seen and entry['id'] not in dups:
            dups.append(entry['id'])
        seen.add(entry['id'])
    if dups:
        raise ValueError(f'{ann_file!r}: duplicate "{key}" ids: '
                         f'{fmt_list(dups)}.')


def _bbox_problem(bbox: Any) -> Optional[str]:
    """Describe what is wrong with a COCO ``[x, y, w, h]`` box, if anything."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return 'is not a list of 4 numbers [x, y, w, h]'
    if not all(is_number(v) for v in bbox):
        return 'contains non-numeric values'
    if bbox[2] < 0 or bbox[3] < 0:
        return 'has a negative width or height'
    return None


def _check_classes(ann_file: str, data: dict, classes: Sequence[str]) -> None:
    """The config's class names must be category names of the file, in the
    file's order (mmdet selects categories by name and numbers the labels in
    the file's order)."""
    names = [cat['name'] for cat in data['categories']]
    classes = list(classes)
    missing = [c for c in classes if c not in names]
    if missing:
        raise ValueError(
            f'{ann_file!r}: the class names of the config do not match the '
            'category names of the annotation file. Config '
            f'(metainfo.classes): {tuple(classes)}. File ("categories"): '
            f'{tuple(names)}. Not in the file: {tuple(missing)}. mmdet '
            'selects the categories by name, so these classes get no '
            'annotation. Set `metainfo=dict(classes=(...))` of the dataset '
            'config to names from the file (in its order), or rename the '
            'categories in the file.')
    matched = [n for n in names if n in classes]
    if len(matched) != len(classes):
        repeated = sorted({n for n in matched if matched.count(n) > 1})
        raise ValueError(
            f'{ann_file!r}: the category name(s) {tuple(repeated)} appear '
            'more than once in "categories"; mmdet selects categories by '
            'name, so each class must name exactly one category. Make the '
            'names unique in the file.')
    if matched != classes:
        raise ValueError(
            f'{ann_file!r}: the config lists its classes {tuple(classes)} '
            'in another order than the file\'s categories '
            f'{tuple(matched)}. mmdet numbers the labels in the file\'s '
            'order, so the names would be attached to the wrong labels. Set '
            f'`metainfo=dict(classes={tuple(matched)!r})` in the dataset '
            'config.')


def _check_unlisted_categories(ann_file: str, data: dict,
                               classes: Sequence[str]) -> None:
    """No category outside the config's classes may have annotations: mmdet
    selects the listed categories and drops the other boxes silently."""
    listed = set(classes)
    counts = Counter(ann['category_id'] for ann in data['annotations'])
    unlisted = [(cat['id'], cat['name'], counts[cat['id']])
                for cat in data['categories']
                if cat['name'] not in listed and counts[cat['id']]]
    if not unlisted:
        return
    unlisted.sort(key=lambda item: -item[2])  # the largest losses first
    dropped = sum(count for _, _, count in unlisted)
    total = len(data['annotations'])
    items = [
        f'id {cat_id!r} {name!r} ({count} box{"" if count == 1 else "es"})'
        for cat_id, name, count in unlisted
    ]
    one = len(unlisted) == 1
    noun = 'category' if one else 'categories'
    raise ValueError(
        f'{ann_file!r}: {len(unlisted)} {noun} of '
        f'the file {"has" if one else "have"} annotations but '
        f'{"is" if one else "are"} not among the config\'s classes '
        f'(metainfo.classes: {tuple(classes)}): {format_listing(items)}. '
        f'mmdet would drop their {dropped} of the file\'s {total} boxes '
        'without a word. Add the categories to '
        '`metainfo=dict(classes=(...))` of the dataset config (in the '
        'file\'s order, with the head\'s `num_classes` to match), or, to '
        'train and evaluate on the listed classes only, set '
        f'{_OPT_OUT}.')


def _check_not_empty(ann_file: str, data: dict,
                     classes: Optional[Sequence[str]],
                     filter_cfg: Optional[dict]) -> None:
    """Refuse a split without images, or one that mmdet's ``filter_cfg``
    (``filter_empty_gt``, ``min_size``) would empty."""
    images = data['images']
    if not images:
        raise ValueError(
            f'{ann_file!r} lists no images: the split is empty, so there is '
            'nothing to train on or evaluate. Point `ann_file` at the '
            'annotation file of a split with images (to train without '
            'validation, set val_dataloader, val_evaluator and val_cfg to '
            'None).')
    if not filter_cfg:
        return
    kept = images
    reasons = []
    if filter_cfg.get('filter_empty_gt', False):
        wanted = {
            cat['id']
            for cat in data['categories']
            if classes is None or cat['name'] in classes
        }
        with_ann = {
            ann['image_id']
            for ann in data['annotations'] if ann['category_id'] in wanted
        }
        kept = [img for img in kept if img['id'] in with_ann]
        reasons.append('filter_empty_gt=True drops the images without an '
                       'annotation of the config\'s classes')
    min_size = filter_cfg.get('min_size', 0) or 0
    if min_size:
        kept = [
            img for img in kept
            if is_number(img['width']) and is_number(img['height'])
            and min(img['width'], img['height']) >= min_size
        ]
        reasons.append(f'min_size={min_size} drops the smaller images')
    if not kept:
        raise ValueError(
            f'{ann_file!r}: all {len(images)} images would be filtered out '
            f'({"; ".join(reasons)}), leaving an empty data set. Check the '
            'annotations and the classes, or relax the dataset\'s '
            '`filter_cfg`.')


def check_coco_annotations(ann_file: str,
                           img_prefix: Optional[str] = None,
                           check_images: Union[bool, str, None] = True,
                           classes: Optional[Sequence[str]] = None,
                           filter_cfg: Optional[dict] = None,
                           ignore_unlisted_categories: bool = False,
                           exif_orientation: bool = True) -> None:
    """Validate a COCO-format annotation file, raising on the first problem.

    Checks, in order: the file exists and parses as JSON; the top-level
    ``images``, ``annotations`` and ``categories`` lists exist; every image
    has ``id``, ``file_name``, ``width`` and ``height``, every annotation
    ``id``, ``image_id``, ``category_id`` and ``bbox``, every category ``id``
    and ``name``; ids are unique; annotations refer to existing images and
    categories; boxes are ``[x, y, w, h]`` with 4 numbers and non-negative
    size; ``classes`` (if given) are category names of the file, in its
    order, and no other category has annotations (unless
    ``ignore_unlisted_categories``); the split has images, and keeps some
    after ``filter_cfg``; and (if ``img_prefix`` is given) every image file
    under ``img_prefix`` exists and decodes, as deeply as ``check_images``
    says, to the ``width`` / ``height`` of the file (from the header on).

    Args:
        ann_file (str): Path of the annotation JSON file.
        img_prefix (str, optional): Directory the images' ``file_name`` are
            relative to. Defaults to None (image files are not checked).
        check_images (bool or str or None): Image check mode, see
            :func:`image_check_mode`: ``'none'``, ``'exists'``, ``'header'``
            or ``'full'``; True (default) or None: the environment variable
            ``DYNCONV_CHECK_IMAGES``, else ``'header'``; False: ``'none'``.
        classes (Sequence[str], optional): The dataset's class names
            (``metainfo['classes']``). Defaults to None (not checked).
        filter_cfg (dict, optional): The dataset's ``filter_cfg``
            (``filter_empty_gt``, ``min_size``) for a training split.
        ignore_unlisted_categories (bool): Let categories that ``classes``
            does not list have annotations (mmdet drops them). Defaults to
            False: refused, naming them and their box counts. The config
            sets it with ``data_check =
            dict(ignore_unlisted_categories=True)``.
        exif_orientation (bool): Whether the training pipeline turns images
            by their EXIF orientation (mmcv's ``LoadImageFromFile`` with
            ``color_type`` ``'color'`` or ``'grayscale'`` and the cv2 or
            pillow backend: the default), so that the decoded size compared
            with ``width`` / ``height`` is the one training sees.

    Raises:
        FileNotFoundError: If ``ann_file``, ``img_prefix`` or image files
            are missing.
        ValueError: For any other problem; the message names the file, the
            problem and the first offending entries.
    """
    mode = image_check_mode(check_images)
    data = _load_json(ann_file)
    if not isinstance(data, dict):
        raise ValueError(f'{ann_file!r}: top level must be a JSON object with '
                         f'{", ".join(_TOP_LEVEL_KEYS)}, got '
                         f'{type(data).__name__}.')
    missing = [k for k in _TOP_LEVEL_KEYS if k not in data]
    if missing:
        raise ValueError(f'{ann_file!r}: missing top-level key(s) '
                         f'{", ".join(missing)} (a COCO instances file needs '
                         f'{", ".join(_TOP_LEVEL_KEYS)}).')
    for key in _TOP_LEVEL_KEYS:
        _check_entries(ann_file, data, key)
        _check_unique_ids(ann_file, data[key], key)

    image_ids = {img['id'] for img in data['images']}
    cat_ids = {cat['id'] for cat in data['categories']}
    if not data['categories']:
        raise ValueError(f'{ann_file!r}: "categories" is empty.')
    unknown_img, unknown_cat, bad_boxes = [], [], []
    for ann in data['annotations']:
        if ann['image_id'] not in image_ids:
            unknown_img.append(f'annotation {ann["id"]!r} -> image_id '
                               f'{ann["image_id"]!r}')
        if ann['category_id'] not in cat_ids:
            unknown_cat.append(f'annotation {ann["id"]!r} -> category_id '
                               f'{ann["category_id"]!r}')
        problem = _bbox_problem(ann['bbox'])
        if problem is not None:
            bad_boxes.append(f'annotation {ann["id"]!r} bbox '
                             f'{ann["bbox"]!r} {problem}')
    if unknown_img:
        raise ValueError(
            f'{ann_file!r}: {len(unknown_img)} annotation(s) refer to image '
            'ids that are not in "images": '
            f'{fmt_list(unknown_img, use_repr=False)}.')
    if unknown_cat:
        raise ValueError(
            f'{ann_file!r}: {len(unknown_cat)} annotation(s) refer to '
            'category ids that are not in "categories" '
            f'(known: {sorted(cat_ids)}): '
            f'{fmt_list(unknown_cat, use_repr=False)}.')
    if bad_boxes:
        raise ValueError(
            f'{ann_file!r}: {len(bad_boxes)} malformed bbox(es) (COCO boxes '
            'are [x, y, width, height]): '
            f'{fmt_list(bad_boxes, use_repr=False)}.')

    if classes is not None:
        _check_classes(ann_file, data, classes)
        if not ignore_unlisted_categories:
            _check_unlisted_categories(ann_file, data, classes)
    _check_not_empty(ann_file, data, classes, filter_cfg)

    if mode != 'none' and img_prefix is not None:
        check_image_files(ann_file, data['images'], img_prefix, mode,
                          exif_orientation)
