# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Early, readable checks of COCO-format annotation files.

mmdet/pycocotools fail deep inside data loading (``KeyError: 'bbox'``,
``FileNotFoundError`` for one image in the middle of an epoch, a corrupt
image two iterations in, ``need at least one array to concatenate`` when the
class names do not match or a split is empty, ...). Calling
:func:`check_coco_annotations` before training turns these into one error
that names the file, the problem and what to fix.

Images are checked according to a mode (:data:`IMAGE_CHECK_MODES`): only
that the files exist, their headers too (default: PIL opens every file and
runs its ``verify()``, which reads a JPEG's header and every chunk of a PNG
without decoding pixels; a JPEG without its end marker is decoded to
confirm it is cut short), or a full decode of every image with PIL and with
OpenCV, the decoder mmcv uses in training (slow; set the environment
variable ``DYNCONV_CHECK_IMAGES=full``).
"""
import json
import numbers
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence, Union

from ..utils.formatting import format_listing

_TOP_LEVEL_KEYS = ('images', 'annotations', 'categories')
_REQUIRED_FIELDS: Dict[str, Sequence[str]] = {
    'images': ('id', 'file_name', 'width', 'height'),
    'annotations': ('id', 'image_id', 'category_id', 'bbox'),
    'categories': ('id', 'name'),
}

#: How thoroughly image files are checked, from none to a full decode.
IMAGE_CHECK_MODES = ('none', 'exists', 'header', 'full')
#: Environment variable that sets the default mode.
IMAGE_CHECK_ENV = 'DYNCONV_CHECK_IMAGES'
_DEFAULT_IMAGE_CHECK = 'header'
_SEQUENTIAL_BELOW = 64  # fewer files than this: no thread pool


def _fmt_list(items: List[Any], use_repr: bool = True) -> str:
    """The first few items, then how many more there are."""
    if use_repr:
        return format_listing(items, fmt=repr)
    return format_listing(items, sep='; ')


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
            f'{format_listing(bad, sep="; ")}.')


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


def image_check_mode(check_images: Union[bool, str, None] = True) -> str:
    """The image check mode (one of :data:`IMAGE_CHECK_MODES`).

    Args:
        check_images (bool or str or None): A mode; ``False`` for
            ``'none'``; ``True`` or None for the environment variable
            ``DYNCONV_CHECK_IMAGES`` if set, else ``'header'``.

    Raises:
        ValueError: For an unknown mode (argument or environment).
    """
    if check_images is False:
        return 'none'
    source = 'check_images'
    if check_images is True or check_images is None:
        check_images = os.environ.get(IMAGE_CHECK_ENV, '').strip()
        source = f'the environment variable {IMAGE_CHECK_ENV}'
        if not check_images:
            return _DEFAULT_IMAGE_CHECK
    mode = str(check_images).lower()
    if mode not in IMAGE_CHECK_MODES:
        raise ValueError(
            f'unknown image check mode {check_images!r} (from {source}); '
            f'use one of {", ".join(IMAGE_CHECK_MODES)}.')
    return mode


def image_problem(path: str, mode: str = 'header') -> Optional[str]:
    """What is wrong with the image file ``path``, or None.

    Args:
        path (str): The image file.
        mode (str): ``'exists'``, ``'header'`` (PIL ``open`` + ``verify``)
            or ``'full'`` (also a full decode with PIL and with OpenCV).

    Returns:
        str or None: ``'missing'`` or a description of the decode failure.
    """
    if mode == 'none':
        return None
    if not osp.isfile(path):
        return 'missing'
    if mode == 'exists':
        return None
    from PIL import Image
    try:
        with Image.open(path) as image:
            image_format = image.format
            image.verify()
        # verify() reads every chunk of a PNG but only the header of a
        # JPEG: a JPEG whose end-of-image marker is missing (a cut download)
        # is decoded in full to confirm.
        if mode == 'full' or (image_format == 'JPEG'
                              and not _has_jpeg_end(path)):
            with Image.open(path) as image:
                image.load()
        if mode == 'full':
            return _cv2_problem(path)
    except Exception as err:  # PIL raises many types on bad data
        return f'{type(err).__name__}: {err}'
    return None


def _has_jpeg_end(path: str, tail: int = 1024) -> bool:
    """Whether the JPEG end-of-image marker is in the last ``tail`` bytes
    (files may carry some trailing data after it)."""
    with open(path, 'rb') as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - tail))
        return b'\xff\xd9' in f.read()


def _cv2_problem(path: str) -> Optional[str]:
    """Decode ``path`` with OpenCV as mmcv's ``LoadImageFromFile`` does."""
    import cv2
    import numpy as np
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0 or cv2.imdecode(data, cv2.IMREAD_COLOR) is None:
        return 'OpenCV cannot decode it'
    return None


def _image_problems(paths: Sequence[str], mode: str) -> List[Optional[str]]:
    """:func:`image_problem` of every path (threads for many files: the
    time goes into reading them)."""
    if len(paths) < _SEQUENTIAL_BELOW:
        return [image_problem(p, mode) for p in paths]
    workers = min(16, 4 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(
            pool.map(lambda p: image_problem(p, mode), paths, chunksize=64))


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
            if _is_number(img['width']) and _is_number(img['height'])
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
                           filter_cfg: Optional[dict] = None) -> None:
    """Validate a COCO-format annotation file, raising on the first problem.

    Checks, in order: the file exists and parses as JSON; the top-level
    ``images``, ``annotations`` and ``categories`` lists exist; every image
    has ``id``, ``file_name``, ``width`` and ``height``, every annotation
    ``id``, ``image_id``, ``category_id`` and ``bbox``, every category ``id``
    and ``name``; ids are unique; annotations refer to existing images and
    categories; boxes are ``[x, y, w, h]`` with 4 numbers and non-negative
    size; ``classes`` (if given) are category names of the file, in its
    order; the split has images, and keeps some after ``filter_cfg``; and
    (if ``img_prefix`` is given) every image file under ``img_prefix``
    exists and decodes, as deeply as ``check_images`` says.

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

    if classes is not None:
        _check_classes(ann_file, data, classes)
    _check_not_empty(ann_file, data, classes, filter_cfg)

    if mode != 'none' and img_prefix is not None:
        _check_image_files(ann_file, data['images'], img_prefix, mode)


def _check_image_files(ann_file: str, images: List[dict], img_prefix: str,
                       mode: str) -> None:
    """Every image exists under ``img_prefix`` and decodes (``mode``)."""
    if not osp.isdir(img_prefix):
        raise FileNotFoundError(
            f'Image directory {img_prefix!r} (for {ann_file!r}) does not '
            'exist. Check `data_prefix` in the dataset config.')
    names = [img['file_name'] for img in images]
    problems = _image_problems([osp.join(img_prefix, n) for n in names], mode)
    missing_files = [n for n, p in zip(names, problems) if p == 'missing']
    if missing_files:
        raise FileNotFoundError(
            f'{len(missing_files)} of {len(images)} image files '
            f'listed in {ann_file!r} are missing under {img_prefix!r}: '
            f'{_fmt_list(missing_files)}.')
    corrupt = [f'{n!r} ({p})' for n, p in zip(names, problems) if p]
    if corrupt:
        how = ('decoded in full'
               if mode == 'full' else 'opened (header check)')
        raise ValueError(
            f'{len(corrupt)} of {len(images)} image files listed in '
            f'{ann_file!r} under {img_prefix!r} cannot be {how}: '
            f'{_fmt_list(corrupt, use_repr=False)}. Replace these files '
            'with valid images, or remove them (and their annotations) from '
            'the annotation file.')
