# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""MobileNetV2 block and conv names, as mmdet's ``MobileNetV2`` builds
them."""
from typing import List, Tuple

# MobileNetV2 (t, c, n, s) settings, as in mmdet's MobileNetV2.
MBV2_ARCH = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenet_v2_block_names() -> List[Tuple[str, int]]:
    """``[(mmdet block name, expand ratio)]`` for ``features.1..17``."""
    names = []
    for stage, (expand, _, num_blocks, _) in enumerate(MBV2_ARCH, start=1):
        names += [(f'layer{stage}.{i}', expand) for i in range(num_blocks)]
    return names


def mbv2_units(expand_ratio: int) -> Tuple[str, ...]:
    """mmdet's ``InvertedResidual`` conv names, in order."""
    units = ('depthwise_conv', 'linear_conv')
    return units if expand_ratio == 1 else ('expand_conv', ) + units
