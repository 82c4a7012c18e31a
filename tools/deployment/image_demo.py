# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Run an exported ONNX detector with ONNX Runtime on an image and draw it.

    python tools/deployment/image_demo.py CONFIG DEPLOY_CFG MODEL.onnx IMAGE \
        [--out result.jpg] [--score-thr 0.3]

mmdeploy's ONNX Runtime backend model (its custom op library loaded when
present) takes the image through the config's test pipeline; mmdet's
visualiser draws the detections, as ``tools/image_demo.py`` does for the
PyTorch model. Needs ``pip install .[deploy]``.
"""
import argparse
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='detector config')
    parser.add_argument('deploy_cfg', help='deploy config of the export')
    parser.add_argument('model', help='the exported .onnx file')
    parser.add_argument('img', help='image file')
    parser.add_argument('--out', default='onnx_result.jpg')
    parser.add_argument('--score-thr', type=float, default=0.3)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmdeploy.apis.utils import build_task_processor
    from mmdeploy.utils import load_config

    import dynconv_mmdet  # noqa: F401 (registers our modules)
    from dynconv_mmdet.deployment import mmdeploy_compat
    deploy_cfg, model_cfg = load_config(args.deploy_cfg, args.config)
    with mmdeploy_compat():
        processor = build_task_processor(model_cfg, deploy_cfg, 'cpu')
        model = processor.build_backend_model([args.model])
        input_shape = deploy_cfg.onnx_config.get('input_shape')
        data, _ = processor.create_input(args.img, input_shape)
        result = model.test_step(data)[0]
    pred = result.pred_instances
    pred = pred[pred.scores > args.score_thr]
    print(f'{len(pred)} detections above {args.score_thr} in {args.img}')
    for box, score, label in zip(pred.bboxes.tolist(), pred.scores.tolist(),
                                 pred.labels.tolist()):
        print(f'  label {label} score {score:.3f} box '
              f"{', '.join(f'{v:.1f}' for v in box)}")
    _draw(model_cfg, args, result)
    print(f'drawn to {args.out}')
    return 0


def _draw(model_cfg, args, result):
    """mmdet's visualiser, as tools/image_demo.py draws."""
    import mmcv
    from mmdet.registry import VISUALIZERS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    visualizer = VISUALIZERS.build(
        dict(type='DetLocalVisualizer', name='onnx_demo'))
    classes = model_cfg.get('metainfo', {}).get('classes') or getattr(
        model_cfg.get('test_dataloader', {}).get('dataset', {}), 'get',
        lambda *_: None)('metainfo')
    if isinstance(classes, dict):
        classes = classes.get('classes')
    if not classes:
        from mmdet.datasets import CocoDataset
        classes = CocoDataset.METAINFO['classes']
    visualizer.dataset_meta = dict(classes=classes)
    image = mmcv.imread(args.img, channel_order='rgb')
    visualizer.add_datasample(
        'result',
        image,
        data_sample=result,
        draw_gt=False,
        pred_score_thr=args.score_thr,
        out_file=args.out)


if __name__ == '__main__':
    sys.exit(main())
