"""Train an ImageNet classifier of the dynconv-mmdet classification project.

Same command line as mmpretrain's ``tools/train.py``; run it from the
repository root, e.g.::

    python projects/classification/tools/train.py \
        projects/classification/configs/resnet/odconv1x_resnet50_8xb32_in1k.py

``--resume`` and ``load_from`` checkpoints are read with
``weights_only=True`` and must fit the model exactly (``SafeLoadRunner`` of
``dynconv_mmdet``; ``--cfg-options strict_load=False`` loads what fits).

One run per work directory, as in the detection ``tools/train.py``: rank 0
takes the lock ``<work_dir>/train.lock`` before anything is written there
and releases it on any exit; a second run into the same folder stops with a
message naming the holder (:mod:`dynconv_mmdet.engine.work_dir_lock`).
"""
import argparse
import os
import os.path as osp
import sys
from copy import deepcopy
from typing import List, Optional

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))
if REPO_ROOT not in sys.path:
    # `custom_imports` of the configs name `projects.classification...`.
    sys.path.insert(0, REPO_ROOT)

from mmengine.config import Config, ConfigDict, DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv`` by default)."""
    parser = argparse.ArgumentParser(description='Train a classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='whether not to evaluate the checkpoint during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='whether to auto scale the learning rate according to the '
        'actual batch size and the original batch size.')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='whether to disable the pin_memory option in dataloaders.')
    parser.add_argument(
        '--no-persistent-workers',
        action='store_true',
        help='whether to disable the persistent_workers option in '
        'dataloaders.')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # When using PyTorch version >= 2.0.0, the `torch.distributed.launch`
    # will pass the `--local-rank` parameter to `tools/train.py` instead
    # of `--local_rank`.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge the command line arguments into the config."""
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    cfg.launcher = args.launcher

    # work_dir: CLI > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp is True:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        assert optim_wrapper in ['OptimWrapper', 'AmpOptimWrapper'], \
            '`--amp` is not supported custom optimizer wrapper type ' \
            f'`{optim_wrapper}.'
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if 'runner_type' not in cfg:
        cfg.runner_type = 'SafeLoadRunner'
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True

    def set_default_dataloader_cfg(cfg: Config, field: str) -> None:
        if cfg.get(field, None) is None:
            return
        dataloader_cfg = deepcopy(cfg[field])
        dataloader_cfg.setdefault('persistent_workers', True)
        dataloader_cfg.setdefault('pin_memory', True)
        if args.no_pin_memory:
            dataloader_cfg['pin_memory'] = False
        if args.no_persistent_workers or \
                dataloader_cfg.get('num_workers', 0) == 0:
            dataloader_cfg['persistent_workers'] = False
        cfg[field] = ConfigDict(dataloader_cfg)

    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        set_default_dataloader_cfg(cfg, field)

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args)

    import dynconv_mmdet  # noqa: F401  (registers SafeLoadRunner)
    from dynconv_mmdet.checkpoint import CheckpointError
    from dynconv_mmdet.engine import WorkDirLockError, acquire_work_dir_lock

    # One run per work directory; the lock goes first, released on any exit.
    try:
        lock = acquire_work_dir_lock(cfg.work_dir, launcher=args.launcher)
    except WorkDirLockError as err:
        sys.exit(f'error: {err}')
    with lock:
        if 'runner_type' not in cfg:
            runner = Runner.from_cfg(cfg)
        else:
            runner = RUNNERS.build(cfg)
        try:
            runner.train()
        except CheckpointError as err:
            sys.exit(f'error: {err}')


if __name__ == '__main__':
    main()
