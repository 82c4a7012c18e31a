"""Parameters and FLOPs of every dynamic backbone preset.

Prints a Markdown table (ResNet-50 and MobileNetV2 1.0; presets static,
condconv8x, dyconv4x, odconv1x, odconv4x): parameters, extra parameters over
the static backbone, and FLOPs for one image (1 multiply-add = 1 FLOP, as
mmdet's ``get_flops`` and fvcore count; see
:mod:`dynconv_mmdet.analysis.complexity` for what is counted).

Example::

    python tools/analysis_tools/backbone_complexity.py --shape 800 1333
"""
import argparse
import json

import dynconv_mmdet  # noqa: F401  (registers the layers and backbones)
from dynconv_mmdet.analysis import backbone_complexity, format_complexity_table
from dynconv_mmdet.analysis.complexity import BACKBONE_CFGS, PRESETS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[800, 1333],
        metavar=('H', 'W'),
        help='input height and width (default 800 1333)')
    parser.add_argument(
        '--backbones',
        nargs='+',
        default=list(BACKBONE_CFGS),
        choices=list(BACKBONE_CFGS))
    parser.add_argument(
        '--presets', nargs='+', default=list(PRESETS), choices=PRESETS)
    parser.add_argument('--json', help='also write the rows to this file')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    shape = (1, 3, *args.shape)
    rows = backbone_complexity(args.backbones, args.presets, shape)
    print(f'Backbone complexity, one image of {args.shape[1]}x{args.shape[0]}'
          ' (W x H); 1 multiply-add = 1 FLOP; attention + aggregation = '
          'pooling, attention MLPs, kernel mixture and attention multiplies '
          'of the dynamic convs.\n')
    print(format_complexity_table(rows, shape))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
