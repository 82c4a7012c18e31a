# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Train a detector from a config (MMDetection 3.x command line).

Examples::

    # one process (CPU or one GPU)
    python tools/train.py configs/odconv_faster_rcnn_r50_fpn_1x.py
    # 8 GPUs on one machine
    bash tools/dist_train.sh configs/odconv_faster_rcnn_r50_fpn_1x.py 8
    # continue the latest run in its work directory
    python tools/train.py CONFIG --resume
    # train the backbone from scratch (no ImageNet checkpoint)
    python tools/train.py CONFIG --cfg-options model.backbone.init_cfg=None

Before the runner is built, :func:`dynconv_mmdet.engine.preflight.check_config`
checks the data (annotations, class names, empty splits, every image's
header; ``--check-images full`` decodes every image), the conv layer types
and the pretrained checkpoints, and stops with one message that lists every
problem. During training, a non-finite loss or a checkpoint that cannot be
written (full disk) stops the run with ``error: ...`` and exit status 1; the
last checkpoint written is kept.

One run per work directory: before anything is written there, the process
of rank 0 takes the lock ``<work_dir>/train.lock`` (host, process, start),
released on any exit. A second run into the same folder stops with a
message naming the holder; a lock left by a killed run of this machine is
taken over, with a warning (:mod:`dynconv_mmdet.engine.work_dir_lock`).
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Train a detector.')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--work-dir',
        help='where logs and checkpoints go (default: '
        'work_dirs/<config name>)')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision (needs a CUDA device)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by (total batch size) / '
        '`auto_scale_lr.base_batch_size`')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        metavar='CHECKPOINT',
        help='resume training: from CHECKPOINT if given, otherwise from the '
        'latest checkpoint in the work directory')
    parser.add_argument(
        '--check-images',
        choices=['none', 'exists', 'header', 'full'],
        default=None,
        help='how the start-up check looks at every image: exists, header '
        '(default; or the DYNCONV_CHECK_IMAGES environment variable), full '
        '(decode every image: slow) or none')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. '
        '`model.backbone.init_cfg=None train_dataloader.batch_size=4`; '
        'lists as key="[a,b]" or key=a,b (quote them, no spaces)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='how the processes were started (set by tools/dist_train.sh '
        'and tools/slurm_train.sh)')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or
    # --local_rank; torchrun sets LOCAL_RANK instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line settings."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)

    # Work directory: command line, then the config, then the config's name.
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        name = osp.splitext(osp.basename(args.config))[0]
        cfg.work_dir = osp.join('./work_dirs', name)

    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        scale_cfg = cfg.get('auto_scale_lr', None)
        if not scale_cfg or 'base_batch_size' not in scale_cfg:
            raise SystemExit(
                'error: --auto-scale-lr needs `auto_scale_lr = dict('
                'enable=False, base_batch_size=N)` in the config, N being '
                'the total batch size the learning rate was set for.')
        cfg.auto_scale_lr.enable = True

    # Checkpoints (load_from, --resume) are read with weights_only=True and
    # must fit the model exactly (SafeLoadRunner; our base configs name it).
    if 'runner_type' not in cfg:
        cfg.runner_type = 'SafeLoadRunner'

    # An explicit checkpoint wins over automatic resumption.
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point."""
    args = parse_args(argv)

    import torch
    if args.amp and not torch.cuda.is_available():
        sys.exit('error: --amp (automatic mixed precision) needs a CUDA '
                 'device, and none is available. Train without --amp.')

    from mmdet.utils import setup_cache_size_limit_of_dynamo

    from dynconv_mmdet.checkpoint import CheckpointError
    from dynconv_mmdet.engine import (TrainingAborted, WorkDirLockError,
                                      acquire_work_dir_lock)
    from dynconv_mmdet.engine.preflight import PreflightError, check_config

    # Fewer recompilations if the model is compiled (`compile=True`).
    setup_cache_size_limit_of_dynamo()
    cfg = build_config(args)

    # One run per work directory; the lock goes first, released on any exit.
    try:
        lock = acquire_work_dir_lock(cfg.work_dir, launcher=args.launcher)
    except WorkDirLockError as err:
        sys.exit(f'error: {err}')
    with lock:
        # Runner.train builds the validation loader only with a validation
        # loop.
        splits = ('train', 'val') if cfg.get('val_cfg', None) else ('train', )
        check_images = (True
                        if args.check_images is None else args.check_images)
        try:
            check_config(cfg, splits=splits, check_images=check_images)
        except PreflightError as err:
            sys.exit(f'error: {err}')

        runner = RUNNERS.build(cfg)
        try:
            runner.train()
        except (TrainingAborted, CheckpointError) as err:
            sys.exit(f'error: {err}')


if __name__ == '__main__':
    main()
