# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""tools/train.py and tools/test.py under faults, on the toy config with a
tiny model (64 px images, a few iterations):

- killed (SIGKILL) while writing a checkpoint with ``max_keep_ckpts=1``: the
  previous checkpoint and ``last_checkpoint`` survive, ``--resume`` finishes;
- a full disk (``ENOSPC``) at a save: exit status 1 with what to do, the
  previous checkpoint kept, nothing partial left;
- a diverging run (``lr=1e8``): stopped at the first NaN loss with exit
  status 1, only finite checkpoints on disk; ``tools/test.py`` on NaN weights
  exits 1 instead of printing an empty AP table;
- ``--resume`` without a checkpoint says that training starts from scratch;
- a corrupt image the start-up check did not look at (``--check-images
  exists``): training stops with an error naming the file;
- a second run into a work directory in use stops with exit status 1 and
  names the holder; a lock left by a killed run is taken over with a
  warning; the lock is released on a normal end, an error and an exception.
"""
import errno
import glob
import importlib
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import textwrap
from types import ModuleType
from typing import List

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio.backends import LocalBackend

from dynconv_mmdet.engine import work_dir_lock
from tools.misc.generate_toy_coco import generate_toy_coco

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(REPO, 'configs', 'toy',
                      'odconv_faster_rcnn_r50_fpn_toy.py')

# The toy config with a ResNet-18 and thin heads, a checkpoint every
# `interval` iterations; the data loaders keep the config's pipelines (and
# so its image loader), resized to 64 px by `_config`.
_TINY_RUN = """
_base_ = {base!r}
data_root = {data_root!r}
train_dataloader = dict(
    batch_size=2, num_workers={workers}, persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
train_cfg = dict(max_iters={iters})
param_scheduler = []
optim_wrapper = dict(optimizer=dict(lr={lr}))
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval={interval}, max_keep_ckpts={keep}),
    visualization=dict(draw=False))
randomness = dict(seed=0)
model = dict(
    backbone=dict(depth=18, base_channels=16),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=16),
    rpn_head=dict(in_channels=16, feat_channels=16),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=16),
        bbox_head=dict(in_channels=16, fc_out_channels=32)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=100, max_per_img=50),
        rcnn=dict(sampler=dict(num=16))),
    test_cfg=dict(rpn=dict(nms_pre=100, max_per_img=50)))
"""


@pytest.fixture(scope='module')
def toy_root(toy_coco) -> str:
    return toy_coco(4, 2)


def _config(tmp_path,
            toy_root: str,
            iters: int = 6,
            interval: int = 2,
            keep: int = 1,
            lr: float = 0.01,
            workers: int = 0) -> str:
    overrides = str(tmp_path / 'tiny_overrides.py')
    with open(overrides, 'w') as f:
        f.write(
            _TINY_RUN.format(
                base=TOY_CONFIG,
                data_root=toy_root + '/',
                iters=iters,
                interval=interval,
                keep=keep,
                lr=lr,
                workers=workers))
    cfg = Config.fromfile(overrides)
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        for transform in loader.dataset.pipeline:
            if transform['type'] == 'Resize':
                transform['scale'] = (64, 64)
    path = str(tmp_path / 'tiny.py')
    cfg.dump(path)
    return path


def _tool(name: str) -> ModuleType:
    return importlib.import_module(f'tools.{name}')


def _exit_message(fn, argv: List[str]) -> str:
    """Run a tool's main(argv), which must stop with an error message."""
    with pytest.raises(SystemExit) as info:
        fn(argv)
    code = info.value.code
    assert isinstance(code, str) and code.startswith('error: '), code
    return code


def _ckpts(work_dir: str) -> List[str]:
    return sorted(
        osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.pth')))


def _pointer(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read()


def _load(path: str) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)


def _finite(state: dict) -> bool:
    return all(
        bool(torch.isfinite(v).all()) for v in state.values()
        if v.is_floating_point())


# Runs tools/train.py; the save of `iter_<KILL_AT>.pth` writes half of the
# file, then the process kills itself with SIGKILL.
_KILLED_DRIVER = """
import os, signal, sys
from mmengine.config import Config
from mmengine.fileio.backends import LocalBackend

real_put = LocalBackend.put


def put(self, obj, filepath):
    if 'iter_' + os.environ['KILL_AT'] + '.pth' in os.path.basename(
            str(filepath)):
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
            os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    return real_put(self, obj, filepath)


LocalBackend.put = put
from tools.train import main
main(sys.argv[1:])
"""


def _lock(work_dir: str) -> str:
    return osp.join(work_dir, work_dir_lock.LOCK_NAME)


def test_killed_while_saving_then_resume(toy_root, tmp_path, monkeypatch,
                                         capsys):
    cfg = _config(tmp_path, toy_root, iters=3, interval=1, keep=1)
    work_dir = str(tmp_path / 'work')
    driver = str(tmp_path / 'killed_train.py')
    with open(driver, 'w') as f:
        f.write(_KILLED_DRIVER)
    env = dict(
        os.environ,
        KILL_AT='2',
        PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''),
        OMP_NUM_THREADS='2')
    command = [sys.executable, driver, cfg, '--work-dir', work_dir]
    proc = subprocess.run(
        command,
        cwd=str(tmp_path),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300)
    assert proc.returncode == -9, proc.stdout[-4000:]
    assert 'Saving checkpoint at 2 iterations' in proc.stdout
    # the only checkpoint (max_keep_ckpts=1) and the pointer survive
    assert _ckpts(work_dir) == ['iter_1.pth']
    assert _load(osp.join(work_dir, 'iter_1.pth'))['meta']['iter'] == 1
    assert _pointer(work_dir) == osp.join(work_dir, 'iter_1.pth')
    assert [n for n in os.listdir(work_dir) if n.startswith('.iter_2.pth')]
    # SIGKILL left the lock: the process is gone, the lock is taken over
    with open(_lock(work_dir)) as f:
        killed_pid = json.load(f)['pid']
    assert killed_pid != os.getpid()

    monkeypatch.chdir(tmp_path)
    _tool('train').main([cfg, '--work-dir', work_dir, '--resume'])
    err = capsys.readouterr().err
    assert f'took over the lock {_lock(work_dir)} of process {killed_pid}' \
        in err
    assert not osp.exists(_lock(work_dir))
    assert _ckpts(work_dir) == ['iter_3.pth']
    assert _load(osp.join(work_dir, 'iter_3.pth'))['meta']['iter'] == 3
    assert _pointer(work_dir) == osp.join(work_dir, 'iter_3.pth')
    assert not [n for n in os.listdir(work_dir) if n.startswith('.')]


def test_disk_full_exits_with_the_previous_checkpoint_kept(
        toy_root, tmp_path, monkeypatch):
    cfg = _config(tmp_path, toy_root, iters=3, interval=1, keep=1)
    work_dir = str(tmp_path / 'work')
    real_put = LocalBackend.put

    def put(self, obj, filepath):
        if 'iter_2.pth' in osp.basename(str(filepath)):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 3])
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put)
    monkeypatch.chdir(tmp_path)
    message = _exit_message(_tool('train').main, [cfg, '--work-dir', work_dir])
    assert 'could not write the checkpoint' in message
    assert 'No space left on device' in message
    assert osp.join(work_dir, 'iter_1.pth') in message
    assert '--resume' in message
    assert _ckpts(work_dir) == ['iter_1.pth']
    assert not [n for n in os.listdir(work_dir) if n.startswith('.')]
    assert _pointer(work_dir) == osp.join(work_dir, 'iter_1.pth')
    assert _load(osp.join(work_dir, 'iter_1.pth'))['meta']['iter'] == 1


def test_diverging_run_stops_and_test_tool_refuses_nan_weights(
        toy_root, tmp_path, monkeypatch):
    cfg = _config(tmp_path, toy_root, iters=8, interval=1, keep=-1, lr=1e8)
    work_dir = str(tmp_path / 'work')
    monkeypatch.chdir(tmp_path)
    message = _exit_message(_tool('train').main, [cfg, '--work-dir', work_dir])
    assert 'training stopped at iteration' in message
    assert 'not finite' in message or 'NaN or infinity' in message
    assert 'learning rate' in message
    stopped_at = int(message.split('iteration ')[1].split(' ')[0])
    assert 1 < stopped_at <= 8
    # every checkpoint written holds finite weights, none after the NaN
    ckpts = _ckpts(work_dir)
    assert ckpts == [f'iter_{i}.pth' for i in range(1, stopped_at)]
    for name in ckpts:
        assert _finite(_load(osp.join(work_dir, name))['state_dict'])

    # tools/test.py on NaN weights: refused before evaluating (the raw
    # predictions are NaN), exit status 1
    nan_ckpt = str(tmp_path / 'nan.pth')
    ckpt = _load(osp.join(work_dir, ckpts[-1]))
    ckpt['state_dict'] = {
        k: (torch.full_like(v, float('nan')) if v.is_floating_point() else v)
        for k, v in ckpt['state_dict'].items()
    }
    torch.save(ckpt, nan_ckpt)
    test_dir = str(tmp_path / 'test')
    message = _exit_message(
        _tool('test').main, [cfg, nan_ckpt, '--work-dir', test_dir])
    assert message.startswith('error: the test stopped before evaluating')
    assert 'NaN or infinite values (' in message and 'rpn_head: ' in message
    assert 'checkpoint saved before the run diverged' in message
    assert not osp.exists(osp.join(test_dir, 'metrics.json'))


def test_resume_without_checkpoint_starts_from_scratch(toy_root, tmp_path,
                                                       monkeypatch, capsys):
    cfg = _config(tmp_path, toy_root, iters=1, interval=1, keep=1)
    work_dir = str(tmp_path / 'work')
    monkeypatch.chdir(tmp_path)
    _tool('train').main([cfg, '--work-dir', work_dir, '--resume'])
    out = capsys.readouterr()
    log = out.out + out.err
    assert 'training starts from scratch' in log
    assert 'latest checkpoint None' not in log
    assert _ckpts(work_dir) == ['iter_1.pth']
    # the lock went with the run: --resume into the same folder works
    assert not osp.exists(_lock(work_dir))
    _tool('train').main([cfg, '--work-dir', work_dir, '--resume'])
    log = ''.join(capsys.readouterr())
    assert f'Resuming from {osp.join(work_dir, "iter_1.pth")}' in log
    assert 'took over' not in log and not osp.exists(_lock(work_dir))


def test_corrupt_image_during_training_names_the_file(toy_root, tmp_path,
                                                      monkeypatch):
    root = str(tmp_path / 'set')
    generate_toy_coco(root, num_train=4, num_val=2, image_size=224, seed=0)
    with open(osp.join(root, 'annotations', 'instances_train.json')) as f:
        names = [img['file_name'] for img in json.load(f)['images']]
    broken = osp.join(root, 'train', names[-1])
    open(broken, 'wb').close()  # an empty file (a copy cut short)
    cfg = _config(tmp_path, root, iters=4, interval=4, workers=1)
    monkeypatch.chdir(tmp_path)
    train = _tool('train')
    # the start-up check finds it ...
    message = _exit_message(
        train.main,
        [cfg, '--work-dir', str(tmp_path / 'w1')])
    assert names[-1] in message and 'cannot be opened' in message
    # (nothing was written: the folder made for the lock is gone again)
    assert not osp.exists(str(tmp_path / 'w1'))
    # ... and when it is skipped, loading it in a worker names it
    from dynconv_mmdet.datasets import ImageDecodeError
    with pytest.raises(ImageDecodeError) as info:
        train.main([
            cfg, '--work-dir',
            str(tmp_path / 'w2'), '--check-images', 'exists'
        ])
    assert broken in str(info.value)
    assert not osp.exists(_lock(str(tmp_path / 'w2')))


# Another run holding a work directory's lock: the lock module alone (it
# needs only the standard library), so that the process starts at once.
_HOLDER = textwrap.dedent("""
    import importlib.util, sys, time
    spec = importlib.util.spec_from_file_location('lock', sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.WorkDirLock(sys.argv[2]).acquire()
    print('held', flush=True)
    time.sleep(300)
""")


def test_second_run_into_a_work_dir_in_use_stops(toy_root, tmp_path,
                                                 monkeypatch):
    cfg = _config(tmp_path, toy_root, iters=1, interval=1)
    work_dir = str(tmp_path / 'work')
    first = subprocess.Popen(
        [sys.executable, '-c', _HOLDER, work_dir_lock.__file__, work_dir],
        stdout=subprocess.PIPE,
        text=True)
    try:
        assert first.stdout.readline().strip() == 'held'
        with open(_lock(work_dir)) as f:
            started = json.load(f)['started']
        monkeypatch.chdir(tmp_path)
        message = _exit_message(
            _tool('train').main, [cfg, '--work-dir', work_dir])
        assert f'the work directory {work_dir} is in use by another ' \
            'training run' in message
        assert f'process {first.pid} on host {socket.gethostname()} ' \
            f'(since {started})' in message
        assert '--work-dir' in message and 'Wait until' in message
        assert f'remove {_lock(work_dir)}' in message
        # the second run wrote nothing, the first one's lock is intact
        assert os.listdir(work_dir) == [work_dir_lock.LOCK_NAME]
        with open(_lock(work_dir)) as f:
            assert json.load(f)['pid'] == first.pid
    finally:
        first.terminate()
        first.wait(timeout=60)
    assert not osp.exists(_lock(work_dir))


def test_classification_train_refuses_a_work_dir_in_use(tmp_path):
    """projects/classification/tools/train.py takes the same lock."""
    work_dir = str(tmp_path / 'work')
    cfg = tmp_path / 'cls.py'
    cfg.write_text('train_dataloader = None\n')
    train = importlib.import_module('projects.classification.tools.train')
    with work_dir_lock.WorkDirLock(work_dir):
        message = _exit_message(train.main, [str(cfg), '--work-dir', work_dir])
        assert f'the work directory {work_dir} is in use' in message
        assert f'process {os.getpid()} on host' in message
        assert os.listdir(work_dir) == [work_dir_lock.LOCK_NAME]
    assert not osp.exists(work_dir)
