"""The command line of the benchmark (``tools/analysis_tools/
benchmark_dynconv.py``): :func:`parse_args` and :func:`main`; the run
itself: :mod:`.run`."""
import argparse
import os.path as osp
import sys
from contextlib import ExitStack
from typing import Optional, Sequence

import torch

from .presets import CUSTOM, UsageError, parse_layout
from .run import PARTS, run_benchmark


def default_config_dir() -> str:
    """``configs/`` of the repository (or of the installed package)."""
    package = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    for candidate in (osp.join(osp.dirname(package),
                               'configs'), osp.join(package, '.mim',
                                                    'configs')):
        if osp.isdir(candidate):
            return candidate
    return osp.join(osp.dirname(package), 'configs')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='benchmark_dynconv.py',
        description='Speed and memory of the dynamic convolutions against '
        'static convs, with an exactness check before any timing '
        '(docs/benchmark.md).')
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    parser.add_argument(
        '--repeats',
        type=int,
        default=7,
        help='timed runs (median) of every inference pass')
    parser.add_argument(
        '--train-repeats',
        type=int,
        default=3,
        help='timed runs (median) of every training step')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='tiny layers, backbones (ResNet-18 w16, MobileNetV2 0.5 at '
        '32x32) and detector inputs (128x128, one-stage also 64x64), for '
        'tests')
    parser.add_argument(
        '--only',
        nargs='+',
        choices=PARTS,
        help=f'parts to run (default: all of {", ".join(PARTS)})')
    parser.add_argument(
        '--gpu-subset',
        action='store_true',
        help='the subset sized for a GPU run of under 5 minutes: backbones '
        '(smaller size set), compiled MobileNetV2 1.0 at 320x320 and the '
        'detectors; no layer rows')
    parser.add_argument(
        '--backbones', nargs='+', help='backbone rows to run (by name)')
    parser.add_argument(
        '--backbone-size',
        type=int,
        nargs='+',
        help='square input sizes of every backbone (training at the first; '
        'default: per backbone, 800 and 320 for MobileNetV2)')
    parser.add_argument(
        '--presets',
        nargs='+',
        help='dynamic presets to run (default: every preset of each '
        "backbone's table)")
    parser.add_argument(
        '--dynamic',
        action='append',
        default=[],
        metavar='[NAME=]DICT',
        help='a dynamic= layout (a Python dict) benchmarked as one more row '
        f'beside the presets, named NAME (default "{CUSTOM}"), e.g. '
        '"foo=dict(conv_cfg=dict(type=\'FooConv2d\'), stages=(True,)*4)"; '
        'may be given more than once')
    parser.add_argument(
        '--custom-imports',
        nargs='+',
        metavar='MODULE',
        help='modules to import first (e.g. one that registers a '
        "DynamicConv2d subclass in mmengine's root MODELS)")
    parser.add_argument(
        '--detectors',
        nargs='+',
        metavar='PATTERN',
        help='config names (fnmatch patterns) of the detector rows '
        '(default: every config without a mask head); each is timed '
        'against its static twin')
    parser.add_argument(
        '--detector-size',
        type=int,
        nargs='+',
        help='square input sizes of every detector (training at the first; '
        'default: the test pipeline\'s size, one-stage detectors also 320)')
    parser.add_argument(
        '--config-dir',
        default=default_config_dir(),
        help='configs (and metafile.yml) of the detector rows')
    parser.add_argument(
        '--compile-backend',
        default='inductor',
        help='torch.compile backend of the compiled rows')
    parser.add_argument(
        '--no-memory', action='store_true', help='skip the memory pass')
    parser.add_argument('--threads', type=int, help='torch threads')
    parser.add_argument('--json', help='write all results to this file')
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.train_repeats < 1:
        parser.error('--repeats and --train-repeats must be >= 1')
    for option in ('backbone_size', 'detector_size'):
        if any(size < 16 for size in getattr(args, option) or ()):
            parser.error(f'--{option.replace("_", "-")}: sizes must be >= 16')
    args.layouts = {}
    for text in args.dynamic:
        try:
            name, layout = parse_layout(text)
        except ValueError as err:
            parser.error(str(err))
        if name in args.layouts or name == 'static':
            parser.error(f'--dynamic: the name {name!r} is taken; give '
                         'each layout its own NAME=')
        args.layouts[name] = layout
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; the exit status: 0, 1 (an exactness check or
    the compiler failed), 2 (a bad command line)."""
    args = parse_args(argv)
    threads = torch.get_num_threads()
    try:
        with ExitStack() as stack:
            return run_benchmark(args, argv, stack)
    except UsageError as err:
        print(f'benchmark_dynconv.py: error: {err}', file=sys.stderr)
        return 2
    finally:
        torch.set_num_threads(threads)
