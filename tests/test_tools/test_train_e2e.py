# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""End-to-end runs on the generated toy COCO set (CPU, a few iterations).

- the README's main job in miniature: ``tools/train.py`` then
  ``tools/test.py`` on ``configs/toy/odconv_faster_rcnn_r50_fpn_toy.py``;
- resuming restores iteration, learning rate, optimizer and model state,
  loading with PyTorch's default ``weights_only=True``;
- a checkpoint that smuggles an arbitrary pickled object is refused;
- 2-process distributed data-parallel training (gloo) keeps the ranks in
  sync and uses every parameter.
"""
import glob
import importlib
import json
import os
import os.path as osp
import pickle
import subprocess
import sys
from types import ModuleType
from typing import Dict, List

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from dynconv_mmdet.testing.distributed import ddp_train_worker, free_port
from dynconv_mmdet.testing.malicious import save_malicious_checkpoint
from dynconv_mmdet.testing.toy_detection import write_toy_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(REPO, 'configs', 'toy',
                      'odconv_faster_rcnn_r50_fpn_toy.py')
AP_KEYS = [
    f'coco/bbox_{k}'
    for k in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
]


@pytest.fixture(scope='module')
def toy_root(toy_coco) -> str:
    return toy_coco(8, 3)


def _write_config(path: str,
                  data_root: str,
                  iters: int,
                  ckpt_interval: int,
                  tiny: bool = True) -> str:
    return write_toy_config(path, TOY_CONFIG, data_root, iters, ckpt_interval,
                            tiny)


def _load_tool(name: str) -> ModuleType:
    return importlib.import_module(f'tools.{name}')


def _run_tool(args: List[str], cwd: str, timeout: int = 240) -> str:
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '2')
    proc = subprocess.run(
        [sys.executable] + args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


def test_toy_main_job_in_miniature(toy_root, tmp_path):
    """tools/train.py then tools/test.py with the main job's model (ODConv
    ResNet-50 Faster R-CNN from scratch), 2 iterations, 3 val images."""
    cfg_file = _write_config(
        str(tmp_path / 'toy_small.py'),
        toy_root,
        iters=2,
        ckpt_interval=2,
        tiny=False)
    work_dir = str(tmp_path / 'work')
    _run_tool([
        osp.join(REPO, 'tools', 'train.py'), cfg_file, '--work-dir', work_dir
    ],
              cwd=str(tmp_path))
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt)

    out = _run_tool([
        osp.join(REPO, 'tools', 'test.py'), cfg_file, ckpt, '--work-dir',
        work_dir
    ],
                    cwd=str(tmp_path))
    header = [line for line in out.splitlines() if line.startswith('type')]
    assert header and header[-1].split() == [
        'type', 'AP', 'AP50', 'AP75', 'AP_S', 'AP_M', 'AP_L'
    ]
    bbox_rows = [line for line in out.splitlines() if line.startswith('bbox')]
    assert bbox_rows and len(bbox_rows[-1].split()) == 7

    with open(osp.join(work_dir, 'metrics.json')) as f:
        result = json.load(f)
    assert result['config'] == cfg_file and result['checkpoint'] == ckpt
    for key in AP_KEYS:
        assert isinstance(result['metrics'][key], float)
        assert -1.0 <= result['metrics'][key] <= 1.0
    assert not any(k.startswith('coco/segm') for k in result['metrics'])
    state = torch.load(
        ckpt, map_location='cpu', weights_only=True)['state_dict']
    assert result['params'] == sum(
        v.numel() for k, v in state.items()
        if not k.endswith(('running_mean', 'running_var',
                           'num_batches_tracked')))

    # the image-inference entry draws the detections of that checkpoint
    image = sorted(glob.glob(osp.join(toy_root, 'val', '*.png')))[0]
    demo_dir = str(tmp_path / 'demo')
    _run_tool([
        osp.join(REPO, 'tools',
                 'image_demo.py'), image, cfg_file, '--weights', ckpt,
        '--out-dir', demo_dir, '--device', 'cpu', '--pred-score-thr', '0.0'
    ],
              cwd=str(tmp_path))
    drawn = osp.join(demo_dir, 'vis', osp.basename(image))
    assert osp.isfile(drawn)
    with Image.open(drawn) as picture, Image.open(image) as original:
        assert picture.size == original.size
        assert np.asarray(picture.convert('RGB')).any()


def _assert_same(a, b, where: str = '') -> None:
    """Recursive equality of nested containers of tensors."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), (where, set(a) ^ set(b))
        for key in a:
            _assert_same(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for idx, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f'{where}[{idx}]')
    else:
        assert a == b, (where, a, b)


def test_resume_restores_training_state(toy_root, tmp_path, monkeypatch):
    work_dir = str(tmp_path / 'work')
    cfg_file = _write_config(
        str(tmp_path / 'tiny.py'), toy_root, iters=4, ckpt_interval=2)
    train_py = osp.join(REPO, 'tools', 'train.py')
    _run_tool([train_py, cfg_file, '--work-dir', work_dir], cwd=str(tmp_path))
    ckpt_path = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt_path) and osp.isfile(
        osp.join(work_dir, 'iter_4.pth'))

    # What was saved, read with PyTorch's default (weights_only=True).
    saved = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    assert saved['meta']['iter'] == 2
    saved_lr = [g['lr'] for g in saved['optimizer']['param_groups']]
    assert saved['optimizer']['state'], 'SGD momentum buffers were saved'

    # Resume in this process, the way `tools/train.py --resume CKPT` sets up
    # the runner, recording how torch.load is called.
    from mmengine.runner import Runner
    loads: List[Dict] = []
    real_load = torch.load

    def spy_load(*args, **kwargs):
        loads.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy_load)
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(cfg_file)
    cfg.work_dir = str(tmp_path / 'resumed')
    cfg.resume = True
    cfg.load_from = ckpt_path
    cfg.launcher = 'none'
    runner = Runner.from_cfg(cfg)
    # Runner.train() builds the loop, optimizer and LR schedulers (whose
    # construction applies the warm-up factor), then resumes: do the same.
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.param_schedulers = runner.build_param_scheduler(
        runner.param_schedulers)
    runner.load_or_resume()
    assert loads and all(kw.get('weights_only', True) for kw in loads)

    assert runner.iter == 2
    assert runner.train_loop.iter == 2
    assert runner.optim_wrapper.get_lr()['lr'] == saved_lr
    _assert_same(runner.optim_wrapper.state_dict(), saved['optimizer'],
                 'optimizer')
    _assert_same(runner.model.state_dict(), saved['state_dict'], 'state_dict')
    _assert_same([s.state_dict() for s in runner.param_schedulers],
                 saved['param_schedulers'], 'param_schedulers')
    # the LR schedule continues from the saved steps (the main schedule at 2)
    assert [s.last_step for s in runner.param_schedulers
            ] == [s['last_step'] for s in saved['param_schedulers']]
    assert runner.param_schedulers[-1].last_step == 2

    # And through the command line: the resumed run ends at iteration 4.
    monkeypatch.setattr(torch, 'load', real_load)
    resumed_dir = str(tmp_path / 'resumed_cli')
    out = _run_tool(
        [train_py, cfg_file, '--work-dir', resumed_dir, '--resume', ckpt_path],
        cwd=str(tmp_path))
    assert 'resumed epoch: 0, iter: 2' in out
    final = torch.load(
        osp.join(resumed_dir, 'iter_4.pth'),
        map_location='cpu',
        weights_only=True)
    assert final['meta']['iter'] == 4
    assert not osp.exists(osp.join(resumed_dir, 'iter_2.pth'))


def test_checkpoint_with_arbitrary_object_is_refused(toy_root, tmp_path,
                                                     monkeypatch):
    from mmengine.runner.checkpoint import _load_checkpoint

    from dynconv_mmdet.checkpoint import CheckpointError, safe_torch_load
    marker = str(tmp_path / 'pwned')
    path = save_malicious_checkpoint(str(tmp_path / 'evil.pth'), marker)

    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, map_location='cpu', weights_only=True)
    # mmengine's loader, which the plugin routes through the safe reader
    with pytest.raises(CheckpointError, match='refusing to load'):
        _load_checkpoint(path, map_location='cpu')
    with pytest.raises(CheckpointError, match='refusing to load'):
        safe_torch_load(path)
    assert not osp.exists(marker)

    # `tools/train.py --resume CKPT` goes through the same loader and stops.
    cfg_file = _write_config(
        str(tmp_path / 'tiny.py'), toy_root, iters=4, ckpt_interval=2)
    monkeypatch.chdir(tmp_path)
    train = _load_tool('train')
    with pytest.raises(SystemExit, match='error: refusing to load'):
        train.main(
            [cfg_file, '--work-dir',
             str(tmp_path / 'work'), '--resume', path])
    assert not osp.exists(marker)
    assert not osp.exists(osp.join(str(tmp_path / 'work'), 'iter_2.pth'))


def test_distributed_training_two_processes(toy_root, tmp_path):
    import torch.multiprocessing as mp
    cfg_file = _write_config(
        str(tmp_path / 'tiny.py'), toy_root, iters=3, ckpt_interval=3)
    out_dir = str(tmp_path)
    iters = 3
    # the worker lives in an importable module: spawned processes import it
    mp.spawn(
        ddp_train_worker,
        args=(2, free_port(), cfg_file, out_dir, iters),
        nprocs=2,
        join=True)
    results = []
    for rank in range(2):
        with open(osp.join(out_dir, f'rank{rank}.json')) as f:
            results.append(json.load(f))
    for res in results:
        assert res['num_trainable'] > 0
        assert res['no_grad'] == [], res['no_grad']
        assert res['max_diff'] == 0.0
        assert len(res['losses']) == iters
        assert all(loss == loss for loss in res['losses'])  # not NaN
    # each rank trained on its own half of the data
    assert results[0]['losses'] != results[1]['losses']
