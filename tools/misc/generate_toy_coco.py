# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Generate the toy COCO set (idempotent).

Does nothing when ``--out`` already holds a complete set generated with the
same parameters. A partial set (e.g. from an interrupted run) is
regenerated; a complete set with other parameters is only replaced with
``--force``.

Example::

    python tools/misc/generate_toy_coco.py --out data/toy_coco \\
        --num-train 400 --num-val 50 --size 320
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from dynconv_mmdet.datasets.toy_coco import (generate_toy_coco,
                                             is_toy_coco_complete,
                                             read_toy_coco_meta)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
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
                f'{osp.join(args.out, "toy_coco_meta.json")} records a set '
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
