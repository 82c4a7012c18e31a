# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Convert an official ODConv ImageNet checkpoint to a backbone checkpoint.

The released OD-ResNet / OD-MobileNetV2 checkpoints (github OSVAI/ODConv)
hold ``{'epoch', 'state_dict', 'acc', 'best_acc', 'optimizer'}`` with every
key prefixed ``module.``. The output holds only the backbone weights under
our (mmdet) names, so it loads with ``init_cfg=dict(type='Pretrained',
checkpoint=DST)``. The backbones also read the official file directly; this
tool makes a small file and checks it on the way
(:func:`dynconv_mmdet.checkpoint.convert_official_backbone`): a ResNet file
must have the blocks per stage of ``--depth`` and a MobileNetV2 file the
stem width of ``--widen-factor`` (the error names the file's own), and with
``--kernel-num`` the result must fit the ODConv backbone exactly. Nothing is
written when a check fails.

Example::

    python tools/model_converters/odconv_official_to_backbone.py \
        od_resnet50_4x.pth.tar checkpoints/odconv4x_resnet50_in1k.pth \
        --arch resnet --depth 50 --kernel-num 4
"""
import argparse
from typing import List, Optional

import torch.nn as nn


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    from dynconv_mmdet.checkpoint.convert import RESNET_LAYOUTS
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument(
        '--arch', choices=['resnet', 'mobilenet_v2'], required=True)
    parser.add_argument(
        '--depth',
        type=int,
        default=50,
        choices=sorted(RESNET_LAYOUTS),
        help='ResNet depth; the file must have its blocks per stage')
    parser.add_argument(
        '--widen-factor',
        type=float,
        default=1.0,
        help='MobileNetV2 widen factor; the file must have its stem width')
    parser.add_argument(
        '--kernel-num',
        type=int,
        help='ODConv kernels; checks the result '
        'against the backbone when given')
    return parser.parse_args(argv)


def build_backbone(args: argparse.Namespace) -> nn.Module:
    """The ODConv backbone the released model must fit."""
    from mmdet.registry import MODELS

    import dynconv_mmdet  # noqa: F401
    if args.arch == 'resnet':
        cfg = dict(type='DynamicResNet', depth=args.depth)
    else:
        cfg = dict(type='DynamicMobileNetV2', widen_factor=args.widen_factor)
    dynamic = dict(conv_cfg=dict(type='ODConv2d', kernel_num=args.kernel_num))
    return MODELS.build(dict(**cfg, preset='odconv1x', dynamic=dynamic))


def main(argv: Optional[List[str]] = None) -> None:
    """Convert; ``error: ...`` and exit status 1 when a check fails."""
    args = parse_args(argv)
    from dynconv_mmdet.checkpoint import (CheckpointError,
                                          convert_official_backbone)
    backbone = build_backbone(args) if args.kernel_num is not None else None
    try:
        out = convert_official_backbone(
            args.src,
            args.dst,
            args.arch,
            check_against=backbone,
            depth=args.depth,
            widen_factor=args.widen_factor)
    except (CheckpointError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) else err
        raise SystemExit(f'error: {message}')
    print(f'saved {len(out["state_dict"])} backbone tensors to {args.dst}')


if __name__ == '__main__':
    main()
