# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Convert an official KernelWarehouse ImageNet checkpoint to a backbone
checkpoint.

The release (github OSVAI/KernelWarehouse, ``main.py``) saves
``{'model': state_dict, 'optimizer', 'epoch', 'scaler', 'args':
argparse.Namespace}``; the ``args`` object is read as inert data, never
unpickled as code. KW models (``kw_resnet18`` / ``kw_resnet50`` with any
released cell ratio, ``kw_mobilenetv2_*``, ``kw1d2x_mobilenetv2_*``) and the
release's static baselines (``resnet*``, ``mobilenetv2_*``) are converted;
the output holds only the backbone weights under our names, checked against
the backbone asked for (``--arch``, ``--depth`` / ``--widen-factor``,
``--preset``), so it loads with ``init_cfg=dict(type='Pretrained',
checkpoint=DST)``. The backbones also read the official file directly
(:func:`dynconv_mmdet.checkpoint.convert_kw_official_backbone`).

Example::

    python tools/model_converters/kw_official_to_backbone.py \\
        kw1x_resnet50.pth checkpoints/kw1x_resnet50_in1k.pth \\
        --arch resnet --depth 50 --preset kw1x
"""
import argparse
from typing import List, Optional

import torch
import torch.nn as nn


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument(
        '--arch', choices=['resnet', 'mobilenet_v2'], required=True)
    parser.add_argument('--depth', type=int, default=50, help='ResNet depth')
    parser.add_argument(
        '--widen-factor',
        type=float,
        default=1.0,
        help='MobileNetV2 widen factor')
    from dynconv_mmdet.models import DynamicMobileNetV2, DynamicResNet
    kw = {
        cls.__name__: [p for p in cls.presets if p.startswith('kw')]
        for cls in (DynamicResNet, DynamicMobileNetV2)
    }
    parser.add_argument(
        '--preset',
        required=True,
        help='preset of the backbone, checked against the result: ' +
        '; '.join(f'{name} {", ".join(presets)}'
                  for name, presets in kw.items()) +
        "; 'static' for the release's static baselines")
    return parser.parse_args(argv)


def build_backbone(args: argparse.Namespace) -> nn.Module:
    """The backbone the released model must fit (on the meta device: only
    its keys and shapes are compared)."""
    from mmdet.registry import MODELS

    from dynconv_mmdet.models import DynamicMobileNetV2, DynamicResNet
    if args.arch == 'resnet':
        cls, cfg = DynamicResNet, dict(depth=args.depth)
    else:
        cls, cfg = DynamicMobileNetV2, dict(widen_factor=args.widen_factor)
    if args.preset not in cls.presets:
        raise SystemExit(f'error: {cls.__name__} has no preset '
                         f'{args.preset!r}; choose one of '
                         f'{sorted(cls.presets)}')
    with torch.device('meta'):
        return MODELS.build(dict(type=cls.__name__, preset=args.preset, **cfg))


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from dynconv_mmdet.checkpoint import (CheckpointError,
                                          convert_kw_official_backbone)
    backbone = build_backbone(args)
    try:
        out = convert_kw_official_backbone(
            args.src, args.dst, args.arch, check_against=backbone)
    except (CheckpointError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) else err
        raise SystemExit(f'error: {message}')
    model = out['meta'].get('release_args', {}).get('model', 'a model')
    print(f'{model} ({out["meta"]["layout"]}): saved '
          f'{len(out["state_dict"])} backbone tensors to {args.dst}')


if __name__ == '__main__':
    main()
