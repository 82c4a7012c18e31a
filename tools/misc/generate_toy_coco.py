# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Generate the toy COCO set of the main job (idempotent).

A tiny, deterministic, COCO-format detection / instance segmentation set.
Every image shows a few flat shapes (circle, square, triangle, star) with
class-specific colours (squares are striped) on a smooth noisy background.
Objects never overlap, so each polygon is exactly the visible mask of its
object and ``area`` is the exact polygon area. Every image holds at least one
small (area < 32^2), one medium (32^2..96^2) and one large (> 96^2) object, so
COCO's AP_S / AP_M / AP_L are defined on any split.

Images are generated from ``numpy.random.default_rng((seed, split, index))``,
so the same seed gives byte-identical files and the validation split does not
depend on the size of the training split.

The command line does nothing when ``--out`` already holds a complete set
generated with the same parameters. A partial set (e.g. from an interrupted
run) is regenerated; a complete set with other parameters is only replaced
with ``--force``. The set is read by mmdet's ``CocoDataset`` with
``metainfo=dict(classes=CLASSES, palette=PALETTE)`` (see
``configs/toy/odconv_faster_rcnn_r50_fpn_toy.py``).

Example::

    python tools/misc/generate_toy_coco.py --out data/toy_coco \\
        --num-train 400 --num-val 50 --size 320

From Python (repository root on ``sys.path``, as in the tests)::

    from tools.misc.generate_toy_coco import generate_toy_coco
"""
import argparse
import json
import math
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    'CLASSES', 'PALETTE', 'area_bucket', 'polygon_area', 'generate_toy_coco',
    'read_toy_coco_meta', 'is_toy_coco_complete', 'main'
]

CLASSES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'star')
"""Class names, in category-id order (ids start at 1)."""

PALETTE: Tuple[Tuple[int, int, int], ...] = ((210, 40, 40), (40, 170, 60),
                                             (40, 70, 210), (235, 205, 35))
"""Base RGB colour of each class (also used as the visualisation palette)."""

SPLITS: Tuple[str, ...] = ('train', 'val')
META_FILE = 'toy_coco_meta.json'
GENERATOR_VERSION = 1

# COCO area buckets and the polygon areas we sample inside them (margins keep
# every object clearly inside its bucket).
SMALL_MAX_AREA = 32**2
LARGE_MIN_AREA = 96**2
_AREA_RANGES: Dict[str, Tuple[float, float]] = {
    'small': (14.0**2, 28.0**2),
    'medium': (38.0**2, 84.0**2),
    'large': (102.0**2, 128.0**2),
}
MIN_IMAGE_SIDE = 224
_MARGIN = 4  # pixels between an object and the border / other objects
_MAX_EXTRA_OBJECTS = 3
_MAX_TRIES = 100
_CIRCLE_VERTICES = 40


def area_bucket(area: float) -> str:
    """Return the COCO size bucket ('small', 'medium' or 'large') of an
    area."""
    if area < SMALL_MAX_AREA:
        return 'small'
    if area > LARGE_MIN_AREA:
        return 'large'
    return 'medium'


def polygon_area(coords: Sequence[float]) -> float:
    """Area of a simple polygon given as a flat ``[x1, y1, x2, y2, ...]``
    list (shoelace formula)."""
    xs = np.asarray(coords[0::2], dtype=np.float64)
    ys = np.asarray(coords[1::2], dtype=np.float64)
    return float(
        abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2)


def _unit_polygon(name: str, angle: float) -> np.ndarray:
    """Vertices (N, 2) of a class shape with circumradius 1, rotated by
    ``angle`` radians around the origin."""
    if name == 'circle':
        t = np.linspace(0, 2 * math.pi, _CIRCLE_VERTICES, endpoint=False)
        radii = np.ones_like(t)
    elif name == 'square':
        t = np.array([0.25, 0.75, 1.25, 1.75]) * math.pi
        radii = np.ones_like(t)
    elif name == 'triangle':
        t = np.array([-0.5, 1 / 6, 5 / 6]) * math.pi
        radii = np.ones_like(t)
    elif name == 'star':
        t = -0.5 * math.pi + np.arange(10) * math.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.5)
    else:
        raise ValueError(f'Unknown toy shape {name!r}; expected one of '
                         f'{CLASSES}.')
    t = t + angle
    return np.stack([radii * np.cos(t), radii * np.sin(t)], axis=1)


def _sample_polygon(rng: np.random.Generator, label: int, bucket: str,
                    img_h: int, img_w: int) -> np.ndarray:
    """Sample a shape of class ``label`` whose area lies in ``bucket`` and
    which fits into the image; returns its vertices (N, 2) centred at 0."""
    name = CLASSES[label]
    lo, hi = _AREA_RANGES[bucket]
    max_w, max_h = img_w - 2 * _MARGIN, img_h - 2 * _MARGIN
    for _ in range(_MAX_TRIES):
        if name == 'square':
            angle = rng.uniform(-math.pi / 7, math.pi / 7)
        else:
            angle = rng.uniform(0, 2 * math.pi)
        unit = _unit_polygon(name, angle)
        unit_area = polygon_area(unit.reshape(-1).tolist())
        target = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        scale = math.sqrt(target / unit_area)
        extent = unit.max(axis=0) - unit.min(axis=0)
        # shrink to fit the image, as long as the area stays in the bucket
        scale = min(scale, max_w / extent[0], max_h / extent[1])
        if unit_area * scale**2 >= lo:
            return unit * scale
    raise ValueError(f'Cannot fit a {bucket} {name} into a {img_h}x{img_w} '
                     f'image; use an image side >= {MIN_IMAGE_SIDE}.')


def _round_polygon(poly: np.ndarray) -> List[float]:
    """Flatten and round vertices to 2 decimals (the stored segmentation)."""
    return [round(float(v), 2) for v in poly.reshape(-1)]


def _apart(a: List[float], b: List[float]) -> bool:
    """Whether two ``[x0, y0, x1, y1]`` boxes are more than ``_MARGIN``
    pixels apart along x or y."""
    return (a[0] > b[2] + _MARGIN or a[2] < b[0] - _MARGIN
            or a[1] > b[3] + _MARGIN or a[3] < b[1] - _MARGIN)


def _place(rng: np.random.Generator, poly: np.ndarray,
           boxes: List[List[float]], img_h: int,
           img_w: int) -> Optional[List[float]]:
    """Translate ``poly`` to a random position where its box keeps
    ``_MARGIN`` pixels from the border and from every box in ``boxes``.

    Returns the rounded flat polygon, or None if no position was found.
    """
    mins, maxs = poly.min(axis=0), poly.max(axis=0)
    for _ in range(_MAX_TRIES):
        cx = rng.uniform(_MARGIN - mins[0], img_w - _MARGIN - maxs[0])
        cy = rng.uniform(_MARGIN - mins[1], img_h - _MARGIN - maxs[1])
        flat = _round_polygon(poly + np.array([cx, cy]))
        x0, y0 = min(flat[0::2]), min(flat[1::2])
        x1, y1 = max(flat[0::2]), max(flat[1::2])
        box = [x0, y0, x1, y1]
        if all(_apart(box, other) for other in boxes):
            boxes.append(box)
            return flat
    return None


def _background(rng: np.random.Generator, img_h: int,
                img_w: int) -> np.ndarray:
    """Grey-ish background: tinted base level, a linear gradient and smooth
    (upsampled) noise. Returns float32 (H, W, 3)."""
    base = rng.uniform(90, 160) + rng.uniform(-15, 15, size=3)
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:img_h, 0:img_w].astype(np.float32)
    grad = (np.cos(theta) * xx / img_w + np.sin(theta) * yy / img_h) * 40 - 20
    coarse = rng.normal(0, 12, size=(img_h // 16 + 2, img_w // 16 + 2))
    coarse_img = Image.fromarray(coarse.astype(np.float32))
    smooth = np.asarray(
        coarse_img.resize(((img_w // 16 + 2) * 16, (img_h // 16 + 2) * 16),
                          Image.Resampling.BILINEAR))[:img_h, :img_w]
    bg = base[None, None, :] + (grad + smooth)[:, :, None]
    return bg.astype(np.float32)


def _texture(rng: np.random.Generator, label: int, img_h: int,
             img_w: int) -> np.ndarray:
    """Class texture (H, W, 3) float32: a jittered class colour; squares are
    striped."""
    color = np.clip(
        np.asarray(PALETTE[label], np.float32) + rng.uniform(-15, 15, 3), 0,
        255)
    tex = np.broadcast_to(color, (img_h, img_w, 3)).copy()
    if CLASSES[label] == 'square':
        yy, xx = np.mgrid[0:img_h, 0:img_w]
        stripes = ((xx + yy) // 4) % 2 == 1
        tex[stripes] *= 0.6
    return tex


def _layout(rng: np.random.Generator, img_h: int,
            img_w: int) -> List[Tuple[int, List[float]]]:
    """Sample non-overlapping objects: one large, one medium and one small,
    plus up to ``_MAX_EXTRA_OBJECTS`` medium / small ones. Returns
    ``[(label, flat polygon), ...]``."""
    num_extra = int(rng.integers(0, _MAX_EXTRA_OBJECTS + 1))
    extras = sorted(
        (str(b) for b in rng.choice(['medium', 'small'], size=num_extra)),
        key=lambda b: b != 'medium')
    for _ in range(_MAX_TRIES):
        boxes: List[List[float]] = []
        objects = []
        for i, bucket in enumerate(['large', 'medium', 'small'] + extras):
            label = int(rng.integers(len(CLASSES)))
            poly = _sample_polygon(rng, label, bucket, img_h, img_w)
            flat = _place(rng, poly, boxes, img_h, img_w)
            if flat is None and i < 3:
                break  # a mandatory object did not fit: new layout
            if flat is not None:
                objects.append((label, flat))
        else:
            return objects
    raise RuntimeError(f'Could not lay out objects of every size in a '
                       f'{img_h}x{img_w} image; use a larger image size.')


def _render_image(
        rng: np.random.Generator, img_h: int,
        img_w: int) -> Tuple[np.ndarray, List[Tuple[int, List[float]]]]:
    """Draw one image; returns (uint8 HxWx3, [(label, flat polygon), ...])."""
    canvas = _background(rng, img_h, img_w)
    objects = _layout(rng, img_h, img_w)
    for label, flat in objects:
        mask_img = Image.new('L', (img_w, img_h), 0)
        ImageDraw.Draw(mask_img).polygon(
            list(zip(flat[0::2], flat[1::2])), fill=1)
        mask = np.asarray(mask_img, dtype=bool)
        canvas[mask] = _texture(rng, label, img_h, img_w)[mask]
    canvas += rng.normal(0, 3, size=canvas.shape)
    img = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return img, objects


def _normalize_size(image_size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """Return (H, W) from an int or an (H, W) pair, checking the minimum."""
    if isinstance(image_size, (int, np.integer)):
        size = (int(image_size), int(image_size))
    else:
        size = tuple(int(s) for s in image_size)
        if len(size) != 2:
            raise ValueError(
                f'image_size must be an int or (H, W), got {image_size!r}.')
    if min(size) < MIN_IMAGE_SIDE:
        raise ValueError(
            f'image_size {size} is too small: both sides must be >= '
            f'{MIN_IMAGE_SIDE} so that large (> 96^2) objects fit.')
    return size  # type: ignore[return-value]


def _params(num_train: int, num_val: int, image_size: Tuple[int, int],
            seed: int) -> dict:
    return dict(
        version=GENERATOR_VERSION,
        num_train=num_train,
        num_val=num_val,
        image_size=list(image_size),
        seed=seed)


def _write_json(path: str, obj: dict) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(obj, f, sort_keys=True)
    os.replace(tmp, path)


def _generate_split(out_dir: str, split: str, split_code: int, num: int,
                    image_size: Tuple[int, int], seed: int) -> dict:
    img_h, img_w = image_size
    img_dir = osp.join(out_dir, split)
    os.makedirs(img_dir, exist_ok=True)
    # drop stale images of an earlier, larger run
    pattern = re.compile(rf'^{split}_\d+\.png$')
    for name in os.listdir(img_dir):
        if pattern.match(name):
            os.remove(osp.join(img_dir, name))
    images, annotations = [], []
    buckets = dict(small=0, medium=0, large=0)
    for idx in range(num):
        rng = np.random.default_rng([seed, split_code, idx])
        img, objects = _render_image(rng, img_h, img_w)
        file_name = f'{split}_{idx:06d}.png'
        Image.fromarray(img).save(
            osp.join(img_dir, file_name), format='PNG', compress_level=6)
        image_id = idx + 1
        images.append(
            dict(id=image_id, file_name=file_name, width=img_w, height=img_h))
        for label, flat in objects:
            xs, ys = flat[0::2], flat[1::2]
            x0, y0 = min(xs), min(ys)
            area = round(polygon_area(flat), 2)
            buckets[area_bucket(area)] += 1
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=label + 1,
                    bbox=[
                        x0, y0,
                        round(max(xs) - x0, 2),
                        round(max(ys) - y0, 2)
                    ],
                    area=area,
                    segmentation=[flat],
                    iscrowd=0))
    coco = dict(
        info=dict(
            description=f'dynconv-mmdet toy COCO ({split})',
            version=str(GENERATOR_VERSION),
            year=2024),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=[
            dict(id=i + 1, name=name, supercategory='shape')
            for i, name in enumerate(CLASSES)
        ])
    ann_file = osp.join(out_dir, 'annotations', f'instances_{split}.json')
    _write_json(ann_file, coco)
    return dict(
        ann_file=ann_file,
        img_dir=img_dir,
        num_images=len(images),
        num_annotations=len(annotations),
        area_buckets=buckets)


def generate_toy_coco(out_dir: str,
                      num_train: int = 400,
                      num_val: int = 50,
                      image_size: Union[int, Sequence[int]] = 320,
                      seed: int = 0) -> dict:
    """Generate the toy COCO set under ``out_dir``.

    Layout: ``annotations/instances_{train,val}.json``, images in ``train/``
    and ``val/`` (PNG), plus ``toy_coco_meta.json`` written last (it marks a
    complete set, see :func:`is_toy_coco_complete`).

    Args:
        out_dir (str): Output directory (created if needed).
        num_train (int): Number of training images. Defaults to 400.
        num_val (int): Number of validation images. Defaults to 50.
        image_size (int | tuple[int, int]): Image size, an int for square
            images or (H, W). Both sides must be >= 224. Defaults to 320.
        seed (int): Random seed (>= 0). Defaults to 0.

    Returns:
        dict: ``out_dir``, ``classes``, ``meta_file`` and, per split
        (``'train'``/``'val'``), a dict with ``ann_file``, ``img_dir``,
        ``num_images``, ``num_annotations`` and ``area_buckets`` (number of
        small/medium/large objects).
    """
    size = _normalize_size(image_size)
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if int(value) != value or value < 1:
            raise ValueError(f'{name} must be a positive int, got {value!r}.')
    if int(seed) != seed or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}.')
    num_train, num_val, seed = int(num_train), int(num_val), int(seed)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    meta_file = osp.join(out_dir, META_FILE)
    if osp.exists(meta_file):
        os.remove(meta_file)  # the set is incomplete until rewritten
    result = dict(out_dir=out_dir, classes=CLASSES, meta_file=meta_file)
    for code, (split, num) in enumerate(zip(SPLITS, (num_train, num_val))):
        result[split] = _generate_split(out_dir, split, code, num, size, seed)
    meta = _params(num_train, num_val, size, seed)
    meta['stats'] = {
        split:
        dict(
            num_images=result[split]['num_images'],
            num_annotations=result[split]['num_annotations'],
            area_buckets=result[split]['area_buckets'])
        for split in SPLITS
    }
    _write_json(meta_file, meta)
    return result


def read_toy_coco_meta(out_dir: str) -> Optional[dict]:
    """Return the parameters a complete set in ``out_dir`` was generated
    with, or None if there is no (readable) meta file."""
    try:
        with open(osp.join(out_dir, META_FILE), encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_toy_coco_complete(out_dir: str,
                         num_train: int = 400,
                         num_val: int = 50,
                         image_size: Union[int, Sequence[int]] = 320,
                         seed: int = 0) -> bool:
    """Whether ``out_dir`` holds a complete set generated with exactly these
    parameters (meta file matches, both annotation files and all their
    images exist)."""
    meta = read_toy_coco_meta(out_dir)
    expected = _params(num_train, num_val, _normalize_size(image_size), seed)
    if meta is None or any(meta.get(k) != v for k, v in expected.items()):
        return False
    for split in SPLITS:
        ann_file = osp.join(out_dir, 'annotations', f'instances_{split}.json')
        try:
            with open(ann_file, encoding='utf-8') as f:
                images = json.load(f)['images']
        except (OSError, ValueError, KeyError):
            return False
        if len(images) != expected[f'num_{split}']:
            return False
        if not all(
                osp.isfile(osp.join(out_dir, split, img['file_name']))
                for img in images):
            return False
    return True


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv``: arguments, default ``sys.argv``)."""
    parser = argparse.ArgumentParser(
        description='Generate a small deterministic COCO-format set of '
        'shapes (boxes + polygon masks).')
    parser.add_argument(
        '--out', default='data/toy_coco', help='output directory')
    parser.add_argument(
        '--num-train', type=int, default=400, help='training images')
    parser.add_argument(
        '--num-val', type=int, default=50, help='validation images')
    parser.add_argument(
        '--size',
        type=int,
        nargs='+',
        default=[320],
        help='image size: one int (square) or H W; sides must be >= 224')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--force',
        action='store_true',
        help='regenerate even if a complete set already exists')
    args = parser.parse_args(argv)
    if len(args.size) not in (1, 2):
        parser.error('--size takes one int or two ints (H W)')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Generate the set unless it is already complete; returns the exit
    status (1 when a set with other parameters is in the way)."""
    args = parse_args(argv)
    size = args.size[0] if len(args.size) == 1 else tuple(args.size)
    params = dict(
        num_train=args.num_train,
        num_val=args.num_val,
        image_size=size,
        seed=args.seed)
    if not args.force:
        if is_toy_coco_complete(args.out, **params):
            print(f'Toy COCO set in {args.out} is complete and up to date; '
                  'nothing to do.')
            return 0
        meta = read_toy_coco_meta(args.out)
        wanted = dict(
            params, image_size=list(args.size) * (3 - len(args.size)))
        if meta is not None and any(
                meta.get(k) != v for k, v in wanted.items()):
            recorded = {k: meta.get(k) for k in wanted}
            print(
                f'{osp.join(args.out, META_FILE)} records a set '
                f'generated with other parameters ({recorded}, requested '
                f'{wanted}); pass --force to replace it or choose another '
                '--out.',
                file=sys.stderr)
            return 1
    result = generate_toy_coco(args.out, **params)
    for split in ('train', 'val'):
        info = result[split]
        print(f'{split}: {info["num_images"]} images, '
              f'{info["num_annotations"]} objects '
              f'{info["area_buckets"]} -> {info["ann_file"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
