"""Parameters and FLOPs of every dynamic backbone preset.

Prints a Markdown table (every backbone of
:data:`dynconv_mmdet.analysis.complexity.COUNTED_BACKBONES`, rows of the
table shared with the benchmark, :mod:`dynconv_mmdet.analysis.backbones`;
every preset of its own table, and any extra ``dynamic=`` layout given with
``--dynamic``): parameters, extra parameters over the static backbone,
and FLOPs for one image (1 multiply-add = 1 FLOP, as mmdet's ``get_flops``
and fvcore count; see :mod:`dynconv_mmdet.analysis.complexity` for what is
counted).

Examples::

    python tools/analysis_tools/backbone_complexity.py --shape 800 1333
    # a conv family of your own, registered by your module
    python tools/analysis_tools/backbone_complexity.py \\
        --custom-imports my_project.foo_conv \\
        --backbones ResNet-50 --dynamic \\
        "foo=dict(conv_cfg=dict(type='FooConv2d'), stages=(True,) * 4)"
"""
import argparse
import json
from typing import Dict, List, Optional

import dynconv_mmdet  # noqa: F401  (registers the layers and backbones)
from dynconv_mmdet.analysis import backbone_complexity, format_complexity_table
from dynconv_mmdet.analysis.cli import import_custom_modules, read_named_layout
from dynconv_mmdet.analysis.complexity import COUNTED_BACKBONES, padded_shape


def _named_layout(text: str) -> Dict[str, dict]:
    try:
        return read_named_layout(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
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
        default=list(COUNTED_BACKBONES),
        choices=list(COUNTED_BACKBONES))
    parser.add_argument(
        '--presets',
        nargs='+',
        help='presets to count (default: every preset of each backbone)')
    parser.add_argument(
        '--custom-imports',
        nargs='+',
        default=[],
        metavar='MODULE',
        help='modules to import first (e.g. one that registers your own '
        'dynamic conv in mmengine\'s root MODELS)')
    parser.add_argument(
        '--dynamic',
        type=_named_layout,
        action='append',
        default=[],
        metavar='NAME=DICT',
        help='an extra row: a `dynamic=` layout of the backbones')
    parser.add_argument(
        '--pad-size-divisor',
        type=int,
        default=32,
        help='count the input padded to multiples of this, as the '
        'detectors\' data preprocessors pad it (default 32; 1: as given)')
    parser.add_argument('--json', help='also write the rows to this file')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[Dict]:
    args = parse_args(argv)
    import_custom_modules(args.custom_imports)
    layouts = {k: v for layout in args.dynamic for k, v in layout.items()}
    shape = (1, 3, *args.shape)
    padded = padded_shape(shape, args.pad_size_divisor)
    rows = backbone_complexity(
        args.backbones,
        args.presets,
        shape,
        layouts=layouts,
        pad_size_divisor=args.pad_size_divisor)
    print(f'Backbone complexity, one image of {args.shape[1]}x{args.shape[0]}'
          f' (W x H), padded to {padded[3]}x{padded[2]} as mmdet\'s data '
          'preprocessors pad it; 1 multiply-add = 1 FLOP; attention + '
          'aggregation = pooling, attention MLPs, kernel mixture and '
          'attention multiplies of the dynamic convs.\n')
    print(format_complexity_table(rows, padded))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == '__main__':
    main()
