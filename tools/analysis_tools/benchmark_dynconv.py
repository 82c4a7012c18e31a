"""Speed and memory of the dynamic convolutions against static convs.

A thin command line over :mod:`dynconv_mmdet.analysis.benchmark` (what is
measured, the exactness check that runs before any timing and the output
format: docs/benchmark.md).

Examples::

    # everything (layers, backbones, compiled backbones, detectors)
    python tools/analysis_tools/benchmark_dynconv.py \\
        --json work_dirs/benchmark.json
    # the GPU subset (under 5 minutes on a GPU)
    python tools/analysis_tools/benchmark_dynconv.py --device cuda \\
        --gpu-subset
    # a third-party conv, beside the presets
    python tools/analysis_tools/benchmark_dynconv.py --only backbones \\
        --backbones ResNet-50 --custom-imports my_package.foo_conv \\
        --dynamic "dict(conv_cfg=dict(type='FooConv2d'), stages=(True,)*4)"
"""
import sys

import dynconv_mmdet  # noqa: F401  (registers the layers and backbones)
from dynconv_mmdet.analysis.benchmark import main

if __name__ == '__main__':
    sys.exit(main())
