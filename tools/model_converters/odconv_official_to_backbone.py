"""Convert an official ODConv ImageNet checkpoint to a backbone checkpoint.

The released OD-ResNet / OD-MobileNetV2 checkpoints (github OSVAI/ODConv)
hold ``{'epoch', 'state_dict', 'acc', 'best_acc', 'optimizer'}`` with every
key prefixed ``module.``. The output holds only the backbone weights under
our (mmdet) names, so it loads with ``init_cfg=dict(type='Pretrained',
checkpoint=DST)``. The backbones also read the official file directly; this
tool makes a small file and checks it on the way.

Example::

    python tools/model_converters/odconv_official_to_backbone.py \
        od_resnet50_4x.pth.tar checkpoints/odconv4x_resnet50_in1k.pth \
        --arch resnet --depth 50 --kernel-num 4
"""
import argparse
import os
import os.path as osp

import torch
from mmdet.registry import MODELS

import dynconv_mmdet  # noqa: F401
from dynconv_mmdet.models.backbones import (convert_official_state_dict,
                                            match_state_dict)
from dynconv_mmdet.models.backbones.pretrained import extract_state_dict
from dynconv_mmdet.utils import safe_torch_load


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument(
        '--arch', choices=['resnet', 'mobilenet_v2'], required=True)
    parser.add_argument(
        '--depth', type=int, default=50, help='ResNet depth (check)')
    parser.add_argument(
        '--widen-factor',
        type=float,
        default=1.0,
        help='MobileNetV2 widen factor (check)')
    parser.add_argument(
        '--kernel-num',
        type=int,
        help='ODConv kernels; checks the result '
        'against the backbone when given')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    state_dict = extract_state_dict(safe_torch_load(args.src), args.src)
    converted = convert_official_state_dict(state_dict, args.arch)
    if args.kernel_num is not None:
        dynamic = dict(
            conv_cfg=dict(type='ODConv2d', kernel_num=args.kernel_num))
        if args.arch == 'resnet':
            cfg = dict(type='DynamicResNet', depth=args.depth)
        else:
            cfg = dict(
                type='DynamicMobileNetV2', widen_factor=args.widen_factor)
        backbone = MODELS.build(
            dict(**cfg, preset='odconv1x', dynamic=dynamic))
        _, report = match_state_dict(backbone, converted)
        if report.missing or report.unexpected or report.mismatched:
            raise SystemExit(
                f'{args.src} does not fit {cfg} with {args.kernel_num} '
                f'kernels: missing {report.missing[:5]}, unexpected '
                f'{report.unexpected[:5]}, mismatched '
                f'{report.mismatched[:5]}')
    if osp.dirname(args.dst):
        os.makedirs(osp.dirname(args.dst), exist_ok=True)
    torch.save(
        dict(
            state_dict=converted,
            meta=dict(source=osp.basename(args.src), arch=args.arch)),
        args.dst)
    print(f'saved {len(converted)} backbone tensors to {args.dst}')


if __name__ == '__main__':
    main()
