# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Draw a detector's predictions on images (mmdet's ``DetInferencer``).

Example::

    python tools/image_demo.py data/toy_coco/val/val_000000.png \\
        configs/toy/odconv_faster_rcnn_r50_fpn_toy.py \\
        --weights work_dirs/odconv_faster_rcnn_r50_fpn_toy/iter_250.pth \\
        --out-dir outputs --device cpu --pred-score-thr 0.5

The pictures go to ``<out-dir>/vis/`` and, unless ``--no-save-pred``, the
predictions (boxes, labels, scores, masks) to ``<out-dir>/preds/`` as JSON.

The weights are read with ``weights_only=True`` and must fit the model of the
config exactly; otherwise their missing, unexpected and mis-shaped keys are
listed and the exit status is 1 (``--partial-load`` loads only what fits).
"""
import argparse
import os.path as osp
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Detect objects in images and draw the results.')
    parser.add_argument('inputs', help='an image file or a folder of images')
    parser.add_argument('model', help='config file of the detector')
    parser.add_argument(
        '--weights', required=True, help='checkpoint file of the detector')
    parser.add_argument(
        '--out-dir', default='outputs', help='where results are written')
    parser.add_argument(
        '--device',
        default=None,
        help='device, e.g. cpu or cuda:0 (default: cuda:0 if available, '
        'else cpu)')
    parser.add_argument(
        '--pred-score-thr',
        type=float,
        default=0.3,
        help='draw only detections scoring at least this')
    parser.add_argument(
        '--batch-size', type=int, default=1, help='images per forward pass')
    parser.add_argument(
        '--palette',
        default='none',
        choices=['coco', 'voc', 'citys', 'random', 'none'],
        help='colours of the classes (none: the dataset\'s own palette)')
    parser.add_argument(
        '--no-save-vis', action='store_true', help='do not save the pictures')
    parser.add_argument(
        '--no-save-pred',
        action='store_true',
        help='do not save the predictions as JSON')
    parser.add_argument(
        '--partial-load',
        action='store_true',
        help='load only the weights that fit the model (the others are '
        'listed as a warning) instead of refusing the checkpoint')
    parser.add_argument(
        '--print-result',
        action='store_true',
        help='print the predictions to the terminal')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Entry point; returns the inferencer's result dict."""
    args = parse_args(argv)

    import torch

    # The config's custom_imports registers the dynamic conv layers; import
    # the plugin anyway so the safe checkpoint loading is set up first.
    import dynconv_mmdet  # noqa: F401
    from dynconv_mmdet.checkpoint import CheckpointError
    from dynconv_mmdet.checkpoint.inferencer import StrictDetInferencer

    if not osp.exists(args.inputs):
        raise SystemExit(f'error: input {args.inputs!r} does not exist')
    if not osp.isfile(args.weights):
        raise SystemExit(f'error: checkpoint {args.weights!r} does not exist')
    device = args.device
    if device is None:
        device = 'cuda:0' if torch.cuda.is_available() else 'cpu'

    try:
        inferencer = StrictDetInferencer(
            model=args.model,
            weights=args.weights,
            device=device,
            palette=args.palette,
            strict_load=not args.partial_load)
    except CheckpointError as err:
        raise SystemExit(f'error: {err}')
    result = inferencer(
        args.inputs,
        batch_size=args.batch_size,
        pred_score_thr=args.pred_score_thr,
        out_dir=args.out_dir,
        no_save_vis=args.no_save_vis,
        no_save_pred=args.no_save_pred,
        print_result=args.print_result)
    if not args.no_save_vis:
        print(f'pictures saved to {osp.join(args.out_dir, "vis")}')
    if not args.no_save_pred:
        print(f'predictions saved to {osp.join(args.out_dir, "preds")}')
    return result


if __name__ == '__main__':
    main()
