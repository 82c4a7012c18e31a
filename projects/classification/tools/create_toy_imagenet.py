"""Write the deterministic toy ImageNet-format dataset used by smoke tests.

The layout is the one mmpretrain's ``CustomDataset`` reads, with class
folders and, equivalently, annotation lists::

    root/
    ├── meta/
    │   ├── classes.txt   # one class name a line
    │   ├── train.txt     # "<class>/<image> <label>" a line
    │   └── val.txt
    ├── train/<class>/<image>.png
    └── val/<class>/<image>.png

Every class has its own base colour and stripe orientation, so a small
network can learn the task; pixel noise comes from a seeded generator, hence
the same arguments always produce the same bytes.

Example (from the repository root)::

    python projects/classification/tools/create_toy_imagenet.py \\
        data/toy_imagenet

From Python (repository root on ``sys.path``, as in the tests)::

    from projects.classification.tools.create_toy_imagenet import \\
        generate_toy_imagenet
"""
import argparse
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
from PIL import Image

__all__ = ['generate_toy_imagenet', 'main']


def _class_image(rng: np.random.RandomState, label: int, num_classes: int,
                 height: int, width: int) -> np.ndarray:
    hue = label / max(num_classes, 1)
    base = np.array(
        [0.5 + 0.5 * np.cos(2 * np.pi * (hue + k / 3.0))
         for k in range(3)]) * 200.0 + 20.0
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = np.pi * label / max(num_classes, 1)
    phase = rng.uniform(0, 2 * np.pi)
    stripes = np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * 0.5 + phase)
    img = base[None, None, :] + 30.0 * stripes[..., None]
    img = img + rng.normal(0.0, 12.0, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def generate_toy_imagenet(root: str,
                          num_classes: int = 8,
                          train_per_class: int = 4,
                          val_per_class: int = 2,
                          image_size: int = 48,
                          seed: int = 0) -> Dict[str, List[str]]:
    """Write a deterministic toy dataset in ImageNet layout under ``root``.

    Image sizes vary slightly around ``image_size`` (non-square) so that the
    ``RandomResizedCrop`` / ``ResizeEdge`` + ``CenterCrop`` pipelines are
    exercised as on ImageNet.

    Args:
        root (str): Output directory (created if needed).
        num_classes (int): Number of classes. Defaults to 8.
        train_per_class (int): Training images per class. Defaults to 4.
        val_per_class (int): Validation images per class. Defaults to 2.
        image_size (int): Approximate image side in pixels. Defaults to 48.
        seed (int): Seed of the pixel noise. Defaults to 0.

    Returns:
        dict: ``classes`` and the annotation lines of ``train`` and ``val``.
    """
    if num_classes < 2:
        raise ValueError(f'num_classes={num_classes} must be >= 2')
    if image_size < 8:
        raise ValueError(f'image_size={image_size} must be >= 8')
    classes = [f'class_{i:03d}' for i in range(num_classes)]
    rng = np.random.RandomState(seed)
    result: Dict[str, List[str]] = dict(classes=classes, train=[], val=[])
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for split, per_class in (('train', train_per_class), ('val',
                                                          val_per_class)):
        for label, name in enumerate(classes):
            folder = osp.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(per_class):
                height = image_size + int(rng.randint(-4, 5))
                width = image_size + int(rng.randint(-4, 9))
                img = _class_image(rng, label, num_classes, height, width)
                filename = f'{name}_{split}_{i:04d}.png'
                Image.fromarray(img).save(osp.join(folder, filename))
                result[split].append(f'{name}/{filename} {label}')
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(result[split]) + '\n')
    with open(osp.join(root, 'meta', 'classes.txt'), 'w') as f:
        f.write('\n'.join(classes) + '\n')
    return result


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv``: arguments, default ``sys.argv``)."""
    parser = argparse.ArgumentParser(
        description='Create a tiny ImageNet-format dataset')
    parser.add_argument('root', help='output directory')
    parser.add_argument('--num-classes', type=int, default=8)
    parser.add_argument('--train-per-class', type=int, default=4)
    parser.add_argument('--val-per-class', type=int, default=2)
    parser.add_argument('--image-size', type=int, default=48)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    """Write the dataset described by the command line."""
    args = parse_args(argv)
    result = generate_toy_imagenet(
        args.root,
        num_classes=args.num_classes,
        train_per_class=args.train_per_class,
        val_per_class=args.val_per_class,
        image_size=args.image_size,
        seed=args.seed)
    print(f'{len(result["train"])} training and {len(result["val"])} '
          f'validation images in {len(result["classes"])} classes written '
          f'to {args.root}')


if __name__ == '__main__':
    main()
