# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Export a detector config of ours to ONNX for ONNX Runtime with mmdeploy.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT IMAGE \
        [--shape dynamic|static] [--opset 11|13] [--deploy-cfg PATH] \
        [--work-dir DIR] [--form single|grouped|free] [--dump-info]

The deploy config is ours (``configs/deploy/``), chosen by the model's task
(detection, or instance-seg for Mask R-CNN), ``--shape`` and ``--opset``,
unless ``--deploy-cfg`` names one. The dynamic convs' export form follows
the deploy config (free batch axis: 'free'; static batch 1: 'single';
static batch above 1: 'grouped'); ``--form`` overrides it where that is
safe. DCN (v1) configs are refused for ONNX Runtime with the reason.
Needs ``pip install .[deploy]`` (README, "Deployment").
"""
import argparse
import sys

from mmengine import Config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='detector config')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        'img',
        nargs='+',
        help='example image(s): their number is the '
        'example batch')
    parser.add_argument(
        '--shape', choices=('dynamic', 'static'), default='dynamic')
    parser.add_argument('--opset', type=int, choices=(11, 13), default=11)
    parser.add_argument('--deploy-cfg', help='another deploy config')
    parser.add_argument('--work-dir', default='work_dirs/onnx')
    parser.add_argument('--form', choices=('single', 'grouped', 'free'))
    parser.add_argument(
        '--dump-info',
        action='store_true',
        help="write mmdeploy's SDK "
        'files (deploy.json, pipeline.json, detail.json)')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import dynconv_mmdet  # noqa: F401 (registers our modules)
    from dynconv_mmdet.deployment import (NotDeployableError, deploy_config,
                                          export_onnx, task_of)
    model_cfg = Config.fromfile(args.config)
    deploy = args.deploy_cfg or deploy_config(
        task_of(model_cfg), args.shape, args.opset)
    try:
        info = export_onnx(
            model_cfg,
            deploy,
            args.img,
            args.work_dir,
            args.checkpoint,
            form=args.form,
            device=args.device,
            dump_info=args.dump_info)
    except NotDeployableError as error:
        print(f'export_onnx: refused: {error}', file=sys.stderr)
        return 2
    print(f"exported {info['onnx']} (deploy config {deploy}, export form "
          f"{info['form']}, example input {info['input_shape']})")
    return 0


if __name__ == '__main__':
    sys.exit(main())
