"""Evaluate an ImageNet classifier of the classification project.

Same command line as mmpretrain's ``tools/test.py``; run it from the
repository root, e.g.::

    CFG=projects/classification/configs/resnet
    python projects/classification/tools/test.py \
        $CFG/odconv1x_resnet50_8xb32_in1k.py \
        work_dirs/odconv1x_resnet50_8xb32_in1k/epoch_100.pth

Top-1 and top-5 accuracy are reported (``Accuracy`` with ``topk=(1, 5)``).
The checkpoint is read with ``weights_only=True`` and must fit the model
exactly (``SafeLoadRunner`` of ``dynconv_mmdet``); ``--partial-load`` loads
only what fits.
"""
import argparse
import os
import os.path as osp
import sys

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))
if REPO_ROOT not in sys.path:
    # `custom_imports` of the configs name `projects.classification...`.
    sys.path.insert(0, REPO_ROOT)

import mmengine  # noqa: E402
from mmengine.config import Config, ConfigDict, DictAction  # noqa: E402
from mmengine.evaluator import DumpResults  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a classifier')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument('--out', help='the file to output the results (.pkl).')
    parser.add_argument(
        '--out-item',
        choices=['metrics', 'pred'],
        help='To output whether metrics or predictions. '
        'Defaults to output predictions.')
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
        '--no-pin-memory',
        action='store_true',
        help='whether to disable the pin_memory option in dataloaders.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--partial-load',
        action='store_true',
        help='load only the weights of the checkpoint that fit the model '
        'instead of refusing a checkpoint that does not fit exactly')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge the command line arguments into the config."""
    # First, so that options may refer to the loops dropped below.
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    cfg.launcher = args.launcher

    # work_dir: CLI > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    cfg.load_from = args.checkpoint
    cfg.resume = False
    # Read with weights_only=True, loaded strictly (dynconv_mmdet).
    if 'runner_type' not in cfg:
        cfg.runner_type = 'SafeLoadRunner'
    if getattr(args, 'partial_load', False):
        cfg.strict_load = False

    # Only the test loop is needed.
    cfg.train_dataloader = None
    cfg.train_cfg = None
    cfg.optim_wrapper = None
    cfg.param_scheduler = None
    cfg.val_dataloader = None
    cfg.val_cfg = None
    cfg.val_evaluator = None

    test_dataloader = ConfigDict(cfg.test_dataloader)
    if args.no_pin_memory:
        test_dataloader['pin_memory'] = False
    if test_dataloader.get('num_workers', 0) == 0:
        test_dataloader['persistent_workers'] = False
    cfg.test_dataloader = test_dataloader

    if args.out is None and args.out_item is not None:
        raise ValueError('Please use `--out` to specify the output file '
                         'when using `--out-item`.')
    return cfg


def main() -> None:
    args = parse_args()
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError('The output file must be a pkl file.')

    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args)

    import dynconv_mmdet  # noqa: F401  (registers SafeLoadRunner)
    from dynconv_mmdet.checkpoint import CheckpointError
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)

    if args.out and args.out_item in ['pred', None]:
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))

    try:
        metrics = runner.test()
    except CheckpointError as err:
        sys.exit(f'error: {err}')

    if args.out and args.out_item == 'metrics':
        mmengine.dump(metrics, args.out)


if __name__ == '__main__':
    main()
