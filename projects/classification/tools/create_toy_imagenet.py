"""Write the deterministic toy ImageNet-format dataset used by smoke tests.

Example (from the repository root)::

    python projects/classification/tools/create_toy_imagenet.py \
        data/toy_imagenet
"""
import argparse
import os.path as osp
import sys

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from projects.classification.dynconv_cls.datasets import \
    generate_toy_imagenet  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Create a tiny ImageNet-format dataset')
    parser.add_argument('root', help='output directory')
    parser.add_argument('--num-classes', type=int, default=8)
    parser.add_argument('--train-per-class', type=int, default=4)
    parser.add_argument('--val-per-class', type=int, default=2)
    parser.add_argument('--image-size', type=int, default=48)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
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
