# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Early, readable checks of COCO-format annotation files.

mmdet/pycocotools fail deep inside data loading (``KeyError: 'bbox'``,
``FileNotFoundError`` for one image in the middle of an epoch, ...). Calling
:func:`check_coco_annotations` before training turns these into one error
that names the file and the problem.
"""
import json
import numbers
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

_TOP_LEVEL_KEYS = ('images', 'annotations', 'categories')
_REQUIRED_FIELDS: Dict[str, Sequence[str]] = {
    'images': ('id', 'file_name', 'width', 'height'),
    'annotations': ('id', 'image_id', 'category_id', 'bbox'),
    'categories': ('id', 'name'),
}
_MAX_LISTED = 5


def _fmt_list(items: List[Any], use_repr: bool = True) -> str:
    """Format the first few items of a list, noting how many more there
    are."""
    total = len(items)
    if use_repr:
        shown = ', '.join(repr(i) for i in items[:_MAX_LISTED])
    else:
        shown = '; '.join(str(i) for i in items[:_MAX_LISTED])
    more = f' (and {total - _MAX_LISTED} more)' if total > _MAX_LISTED else ''
    return shown + more


def _is_number(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and value == value)


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
            f'{"; ".join(bad[:_MAX_LISTED])}'
            f'{" ..." if len(bad) > _MAX_LISTED else ""}.')


def _check_unique_ids(ann_file: str, entries: List[dict], key: str) -> None:
    seen, dups = set(), []
    for entry in entries:
        if entry['id'] in seen and entry['id'] not in dups:
            dups.append(entry['id'])
        seen.add(entry['id'])
    if dups:
        raise ValueError(f'{ann_file!r}: duplicate "{key}" ids: '
                         f'{_fmt_list(dups)}.')


def _bbox_problem(bbox: Any) -> Optional[str]:
    """Describe what is wrong with a COCO ``[x, y, w, h]`` box, if anything."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return 'is not a list of 4 numbers [x, y, w, h]'
    if not all(_is_number(v) for v in bbox):
        return 'contains non-numeric values'
    if bbox[2] < 0 or bbox[3] < 0:
        return 'has a negative width or height'
    return None


def check_coco_annotations(ann_file: str,
                           img_prefix: Optional[str] = None,
                           check_images: bool = True) -> None:
    """Validate a COCO-format annotation file, raising on the first problem.

    Checks, in order: the file exists and parses as JSON; the top-level
    ``images``, ``annotations`` and ``categories`` lists exist; every image
    has ``id``, ``file_name``, ``width`` and ``height``, every annotation
    ``id``, ``image_id``, ``category_id`` and ``bbox``, every category ``id``
    and ``name``; ids are unique; annotations refer to existing images and
    categories; boxes are ``[x, y, w, h]`` with 4 numbers and non-negative
    size; and (if ``check_images`` and ``img_prefix`` are given) every image
    file exists under ``img_prefix``.

    Args:
        ann_file (str): Path of the annotation JSON file.
        img_prefix (str, optional): Directory the images' ``file_name`` are
            relative to. Defaults to None (image files are not checked).
        check_images (bool): Whether to check the image files exist.
            Defaults to True.

    Raises:
        FileNotFoundError: If ``ann_file``, ``img_prefix`` or image files
            are missing.
        ValueError: For any other problem; the message names the file, the
            problem and the first offending entries.
    """
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
            f'{_fmt_list(unknown_img, use_repr=False)}.')
    if unknown_cat:
        raise ValueError(
            f'{ann_file!r}: {len(unknown_cat)} annotation(s) refer to '
            'category ids that are not in "categories" '
            f'(known: {sorted(cat_ids)}): '
            f'{_fmt_list(unknown_cat, use_repr=False)}.')
    if bad_boxes:
        raise ValueError(
            f'{ann_file!r}: {len(bad_boxes)} malformed bbox(es) (COCO boxes '
            'are [x, y, width, height]): '
            f'{_fmt_list(bad_boxes, use_repr=False)}.')

    if check_images and img_prefix is not None:
        if not osp.isdir(img_prefix):
            raise FileNotFoundError(
                f'Image directory {img_prefix!r} (for {ann_file!r}) does not '
                'exist. Check `data_prefix` in the dataset config.')
        missing_files = [
            img['file_name'] for img in data['images']
            if not osp.isfile(osp.join(img_prefix, img['file_name']))
        ]
        if missing_files:
            raise FileNotFoundError(
                f'{len(missing_files)} of {len(data["images"])} image files '
                f'listed in {ann_file!r} are missing under {img_prefix!r}: '
                f'{_fmt_list(missing_files)}.')
