# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Evaluate a trained detector on its config's test set.

Prints a COCO AP table (box AP and, for Mask R-CNN, mask AP: AP, AP50, AP75,
AP_S, AP_M, AP_L) and writes ``<work_dir>/metrics.json``::

    {"config": ..., "checkpoint": ...,
     "metrics": {"coco/bbox_mAP": 0.374, "coco/bbox_mAP_50": ..., ...},
     "params": 41753161}

Metric values are mmdet's ``CocoMetric`` results (fractions, 3 decimals);
``params`` is the number of model parameters. An evaluation that produces no
metric (no detection at all, e.g. from the NaN weights of a diverged run)
is an error: nothing is written and the exit status is 1. So are raw
predictions (before NMS) that hold NaN or infinity (NMS would drop them
and the AP would look plausible; the config's ``CheckFinitePredictionsHook``
stops before evaluating, naming the count) and a test split without any box
that counts (every box ``iscrowd``: COCO reports AP -1).

The checkpoint is read with ``weights_only=True`` and must fit the model
exactly; otherwise its missing, unexpected and mis-shaped keys are listed and
the exit status is 1 (``--partial-load`` loads only what fits).

Examples::

    python tools/test.py configs/odconv_faster_rcnn_r50_fpn_1x.py \\
        work_dirs/odconv_faster_rcnn_r50_fpn_1x/epoch_12.pth
    bash tools/dist_test.sh CONFIG CHECKPOINT 8 --out results.pkl
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
from typing import Any, Dict, List, Optional

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from dynconv_mmdet.utils.formatting import format_listing

# (column title, CocoMetric key suffix), in the order papers report them.
AP_COLUMNS = (('AP', 'mAP'), ('AP50', 'mAP_50'), ('AP75', 'mAP_75'),
              ('AP_S', 'mAP_s'), ('AP_M', 'mAP_m'), ('AP_L', 'mAP_l'))
IOU_TYPES = ('bbox', 'segm')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Evaluate a detector (COCO AP) and save the metrics.')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='where metrics.json and the logs go (default: '
        'work_dirs/<config name>)')
    parser.add_argument(
        '--out',
        help='also dump the raw predictions to this .pkl file for offline '
        'evaluation')
    parser.add_argument(
        '--show-dir',
        help='draw the predictions on the test images and save them in '
        'this directory (inside the run\'s timestamped log directory)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. '
        '`test_dataloader.batch_size=2`; lists as key="[a,b]" or key=a,b')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='how the processes were started (set by tools/dist_test.sh '
        'and tools/slurm_test.sh)')
    parser.add_argument(
        '--partial-load',
        action='store_true',
        help='load only the weights of the checkpoint that fit the model '
        '(the others are listed as a warning); by default a checkpoint '
        'that does not fit exactly is refused, listing the missing, '
        'unexpected and mis-shaped keys')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error('--out must name a .pkl or .pickle file')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line settings."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        name = osp.splitext(osp.basename(args.config))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    cfg.load_from = args.checkpoint
    # The checkpoint is read with weights_only=True and must fit the model
    # exactly (SafeLoadRunner; our base configs name it) unless asked not to.
    if 'runner_type' not in cfg:
        cfg.runner_type = 'SafeLoadRunner'
    if args.partial_load:
        cfg.strict_load = False

    if args.show_dir:
        hooks = cfg.get('default_hooks', None) or {}
        if 'visualization' not in hooks:
            raise SystemExit('error: --show-dir needs a `visualization` entry '
                             '(DetVisualizationHook) in `default_hooks`.')
        cfg.default_hooks.visualization.draw = True
        cfg.default_hooks.visualization.test_out_dir = args.show_dir
    return cfg


def format_ap_table(metrics: Dict[str, float]) -> str:
    """Render the COCO AP metrics (in percent) as a text table.

    Args:
        metrics (dict): Metrics as returned by ``Runner.test``, with keys such
            as ``coco/bbox_mAP`` (fractions).

    Returns:
        str: One header line and one line per IoU type found (bbox, segm).
    """
    width = 8
    lines = ['type'.ljust(6) + ''.join(t.rjust(width) for t, _ in AP_COLUMNS)]
    for iou_type in IOU_TYPES:
        keys = [f'coco/{iou_type}_{suffix}' for _, suffix in AP_COLUMNS]
        if not any(k in metrics for k in keys):
            continue
        cells = []
        for key in keys:
            value = metrics.get(key)
            cell = '-' if value is None else f'{100 * float(value):.1f}'
            cells.append(cell.rjust(width))
        lines.append(iou_type.ljust(6) + ''.join(cells))
    return '\n'.join(lines)


def _to_builtin(value):
    """JSON-serialisable copy of a metric value (numpy scalars, tensors)."""
    if hasattr(value, 'item') and callable(value.item):
        try:
            return value.item()
        except (ValueError, RuntimeError):
            pass
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_to_builtin(v) for v in value]
    return str(value)


def has_metric(metrics: Dict[str, Any]) -> bool:
    """Whether the evaluation produced at least one metric that is not
    NaN."""
    for value in metrics.values():
        value = _to_builtin(value)
        if not isinstance(value, float) or math.isfinite(value):
            return True
    return False


def no_metric_message(checkpoint: str, model, num_images: int) -> str:
    """Why ``tools/test.py`` stops when the evaluation produced no metric,
    and what to do."""
    bad = [
        name for name, value in model.state_dict().items()
        if value.is_floating_point() and not bool(value.isfinite().all())
    ]
    if bad:
        cause = (f'The weights in {checkpoint} hold NaN or infinity in '
                 f'{len(bad)} tensor(s) ({format_listing(bad)}): the '
                 'training diverged. Evaluate a checkpoint saved before it '
                 'diverged, or train again with a lower learning rate or '
                 'gradient clipping.')
    else:
        cause = (f'The model predicted no valid detection on any of the '
                 f'{num_images} test images: check that {checkpoint} was '
                 'trained with this config (same classes and model) and that '
                 'test_dataloader points at the right images.')
    return (f'error: the evaluation of {checkpoint} produced no metric (the '
            'evaluator returned nothing; metrics.json was not written). ' +
            cause)


def nothing_evaluated(metrics: Dict[str, Any]) -> bool:
    """Whether every AP is COCO's "no ground truth" marker (-1): the test
    split has no box that counts (every box ``iscrowd``, or none at
    all)."""
    aps = [
        _to_builtin(v) for k, v in metrics.items()
        if k.split('/')[-1].split('_', 1)[-1].startswith('mAP')
    ]
    return bool(aps) and all(isinstance(v, float) and v < 0 for v in aps)


def nothing_evaluated_message(checkpoint: str, runner) -> str:
    """Why ``tools/test.py`` stops when no AP could be computed."""
    evaluators = runner.cfg.get('test_evaluator') or []
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    files = sorted(
        {str(e['ann_file'])
         for e in evaluators if e.get('ann_file')})
    counts = ''
    for metric in runner.test_evaluator.metrics:
        coco = getattr(metric, '_coco_api', None)
        if coco is not None and getattr(coco, 'anns', None) is not None:
            anns = list(coco.anns.values())
            crowd = sum(bool(a.get('iscrowd', 0)) for a in anns)
            counts = (f' It holds {len(anns)} annotation(s), {crowd} of them '
                      '`iscrowd` (COCO evaluation ignores those).')
            break
    where = ', '.join(files) or 'the test annotation file'
    return (f'error: nothing was evaluated for {checkpoint}: every AP is '
            f'-1, COCO\'s mark of a split without any box to score. The '
            f'test split ({where}) has no annotation that counts.{counts} '
            'Point test_dataloader / test_evaluator at annotations with '
            'non-crowd boxes; metrics.json was not written.')


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    """Entry point; returns the metrics."""
    args = parse_args(argv)

    from mmdet.evaluation import DumpDetResults
    from mmdet.utils import setup_cache_size_limit_of_dynamo
    from mmengine.dist import is_main_process
    from mmengine.model import is_model_wrapper

    from dynconv_mmdet.engine.preflight import PreflightError, check_config

    setup_cache_size_limit_of_dynamo()
    cfg = build_config(args)
    try:
        # Testing loads the checkpoint over the initial weights, so the
        # backbone's ImageNet checkpoint is not needed.
        check_config(cfg, splits=('test', ), check_checkpoints=False)
    except PreflightError as err:
        sys.exit(f'error: {err}')

    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))

    from dynconv_mmdet.checkpoint import CheckpointError
    from dynconv_mmdet.engine.hooks import NonFinitePredictionError
    try:
        metrics = runner.test()
    except (CheckpointError, NonFinitePredictionError) as err:
        sys.exit(f'error: {err}')
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    if not has_metric(metrics):
        sys.exit(
            no_metric_message(args.checkpoint, model,
                              len(runner.test_dataloader.dataset)))
    if nothing_evaluated(metrics):
        sys.exit(nothing_evaluated_message(args.checkpoint, runner))

    if is_main_process():
        num_params = sum(p.numel() for p in model.parameters())
        print(f'\nCOCO AP (%) of {args.checkpoint}:')
        print(format_ap_table(metrics))
        result = dict(
            config=args.config,
            checkpoint=args.checkpoint,
            metrics={
                k: _to_builtin(v)
                for k, v in metrics.items()
            },
            params=int(num_params))
        os.makedirs(cfg.work_dir, exist_ok=True)
        out_file = osp.join(cfg.work_dir, 'metrics.json')
        with open(out_file, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=2)
        print(f'metrics saved to {out_file}')
    return metrics


if __name__ == '__main__':
    main()
