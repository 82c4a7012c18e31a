# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""AtomicCheckpointHook: a checkpoint is complete or absent, the previous one
survives a run killed while saving and a full disk, best checkpoints
included; every config of ours uses it.

mmengine 0.10.7's CheckpointHook, in the same situations, deletes the only
checkpoint before writing the next one (``max_keep_ckpts=1``), leaves a
truncated file under the final name and removes the old best checkpoint
before the new one is written.
"""
import errno
import glob
import os
import os.path as osp

import pytest
import torch
from mmengine.fileio.backends import LocalBackend
from mmengine.registry import HOOKS

import dynconv_mmdet  # noqa: F401
from dynconv_mmdet.engine import (AtomicCheckpointHook, CheckpointSaveError,
                                  NonFiniteError, find_resume_checkpoint)
from dynconv_mmdet.testing import ToyModel, toy_runner


class _Killed(BaseException):
    """Stands for SIGKILL: nothing of ours runs after it (no ``except``)."""


def _failing_put(monkeypatch, fail_on: str, exc: BaseException) -> list:
    """Make LocalBackend.put write half of the first file whose name
    contains ``fail_on``, then raise ``exc``. Returns the written paths."""
    real_put = LocalBackend.put
    written = []

    def put(self, obj, filepath):
        if fail_on in osp.basename(str(filepath)) and not written:
            written.append(str(filepath))
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise exc
        return real_put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put)
    return written


def _checkpoint(every: int = 2, **kwargs) -> dict:
    return dict(
        type='AtomicCheckpointHook', interval=every, by_epoch=False, **kwargs)


def _pointer(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read()


def _files(work_dir: str, pattern: str = '*.pth') -> list:
    return sorted(
        osp.basename(p) for p in glob.glob(osp.join(work_dir, pattern)))


def _hidden(work_dir: str) -> list:
    return sorted(n for n in os.listdir(work_dir) if n.startswith('.'))


def _iter_of(path: str) -> int:
    return torch.load(
        path, map_location='cpu', weights_only=True)['meta']['iter']


def test_registered_in_root_and_visible_from_downstream_scopes():
    from mmdet.registry import HOOKS as MMDET_HOOKS
    from mmpretrain.registry import HOOKS as MMPRETRAIN_HOOKS
    for registry in (HOOKS, MMDET_HOOKS, MMPRETRAIN_HOOKS):
        assert registry.get('AtomicCheckpointHook') is AtomicCheckpointHook


def test_saves_like_mmengine_and_keeps_max_keep_ckpts(tmp_path):
    work_dir = str(tmp_path)
    runner = toy_runner(work_dir, checkpoint=_checkpoint(max_keep_ckpts=2))
    runner.train()
    assert _files(work_dir) == ['iter_4.pth', 'iter_6.pth']
    assert _pointer(work_dir) == osp.join(work_dir, 'iter_6.pth')
    assert _hidden(work_dir) == []
    ckpt = torch.load(
        osp.join(work_dir, 'iter_6.pth'),
        map_location='cpu',
        weights_only=True)
    assert ckpt['meta']['iter'] == 6
    assert ckpt['message_hub']['runtime_info']['keep_ckpt_ids'] == [4, 6]
    assert set(ckpt) >= {'state_dict', 'optimizer', 'param_schedulers'}
    torch.testing.assert_close(ckpt['state_dict']['linear.weight'],
                               runner.model.linear.weight.detach())


def test_killed_while_saving_keeps_the_only_checkpoint(tmp_path, monkeypatch):
    """max_keep_ckpts=1, killed half-way through writing iter_4: iter_2 and
    the pointer to it survive, and the run resumes and finishes."""
    work_dir = str(tmp_path)
    written = _failing_put(monkeypatch, 'iter_4', _Killed())
    runner = toy_runner(work_dir, checkpoint=_checkpoint(max_keep_ckpts=1))
    with pytest.raises(_Killed):
        runner.train()
    assert written and osp.basename(written[0]).startswith('.iter_4.pth.tmp')
    assert _files(work_dir) == ['iter_2.pth']
    assert _iter_of(osp.join(work_dir, 'iter_2.pth')) == 2
    assert _pointer(work_dir) == osp.join(work_dir, 'iter_2.pth')
    assert len(_hidden(work_dir)) == 1  # the partial file of the killed save

    monkeypatch.undo()
    resume_from = find_resume_checkpoint(work_dir)
    assert resume_from == osp.join(work_dir, 'iter_2.pth')
    resumed = toy_runner(
        work_dir,
        checkpoint=_checkpoint(max_keep_ckpts=1),
        resume_from=resume_from)
    resumed.train()
    assert resumed.iter == 6
    assert _files(work_dir) == ['iter_6.pth']
    assert _pointer(work_dir) == osp.join(work_dir, 'iter_6.pth')
    assert _hidden(work_dir) == []  # the partial file was cleaned up


def test_disk_full_keeps_previous_checkpoint_and_says_what_to_do(
        tmp_path, monkeypatch):
    work_dir = str(tmp_path)
    _failing_put(monkeypatch, 'iter_4',
                 OSError(errno.ENOSPC, 'No space left on device'))
    runner = toy_runner(work_dir, checkpoint=_checkpoint(max_keep_ckpts=1))
    with pytest.raises(CheckpointSaveError) as info:
        runner.train()
    message = str(info.value)
    assert 'could not write the checkpoint' in message
    assert osp.join(work_dir, 'iter_4.pth') in message
    assert 'No space left on device' in message
    assert f'previous checkpoint {osp.join(work_dir, "iter_2.pth")} is kept' \
        in message
    assert 'Free space' in message and '--resume' in message
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.ENOSPC
    # nothing partial is left, the previous checkpoint and pointer are intact
    assert _files(work_dir) == ['iter_2.pth']
    assert _hidden(work_dir) == []
    assert _iter_of(osp.join(work_dir, 'iter_2.pth')) == 2
    assert _pointer(work_dir) == osp.join(work_dir, 'iter_2.pth')


def test_disk_full_at_the_first_save(tmp_path, monkeypatch):
    work_dir = str(tmp_path)
    _failing_put(monkeypatch, 'iter_2',
                 OSError(errno.ENOSPC, 'No space left on device'))
    with pytest.raises(
            CheckpointSaveError,
            match='No earlier checkpoint of this run exists'):
        toy_runner(work_dir).train()
    assert _files(work_dir) == [] and _hidden(work_dir) == []
    assert not osp.exists(osp.join(work_dir, 'last_checkpoint'))


def test_best_checkpoint_replaces_the_old_one_only_when_written(tmp_path):
    work_dir = str(tmp_path)
    runner = toy_runner(
        work_dir,
        checkpoint=_checkpoint(
            max_keep_ckpts=1, save_best='score', rule='greater'),
        val_scores=[0.1, 0.5, 0.3])
    runner.train()
    assert _files(work_dir) == ['best_score_iter_4.pth', 'iter_6.pth']
    best = torch.load(
        osp.join(work_dir, 'best_score_iter_4.pth'),
        map_location='cpu',
        weights_only=True)
    assert best['meta']['iter'] == 4 and 'optimizer' not in best
    assert runner.message_hub.get_info('best_score') == 0.5
    assert _hidden(work_dir) == []


def test_disk_full_while_saving_a_new_best_keeps_the_old_best(
        tmp_path, monkeypatch):
    work_dir = str(tmp_path)
    _failing_put(monkeypatch, 'best_score_iter_4',
                 OSError(errno.ENOSPC, 'No space left on device'))
    runner = toy_runner(
        work_dir,
        checkpoint=_checkpoint(
            max_keep_ckpts=1, save_best='score', rule='greater'),
        val_scores=[0.1, 0.5])
    with pytest.raises(CheckpointSaveError, match='best_score_iter_4.pth'):
        runner.train()
    assert _files(work_dir) == ['best_score_iter_2.pth', 'iter_4.pth']
    assert _iter_of(osp.join(work_dir, 'best_score_iter_2.pth')) == 2
    assert _hidden(work_dir) == []


def test_non_finite_weights_are_not_saved(tmp_path):
    """Without the loss check, NaN weights at a save stop the run and the
    last finite checkpoint stays the latest."""
    work_dir = str(tmp_path)
    runner = toy_runner(
        work_dir,
        checkpoint=_checkpoint(max_keep_ckpts=1),
        model=ToyModel(nan_at=3))
    with pytest.raises(NonFiniteError) as info:
        runner.train()
    message = str(info.value)
    assert 'iteration 4' in message and 'linear.weight' in message
    assert 'iter_4.pth was not written' in message
    assert f'{osp.join(work_dir, "iter_2.pth")}, is kept' in message
    assert _files(work_dir) == ['iter_2.pth']
    assert _pointer(work_dir) == osp.join(work_dir, 'iter_2.pth')
    state = torch.load(
        osp.join(work_dir, 'iter_2.pth'),
        map_location='cpu',
        weights_only=True)['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values())


def test_check_finite_can_be_turned_off(tmp_path):
    work_dir = str(tmp_path)
    toy_runner(
        work_dir,
        checkpoint=_checkpoint(max_keep_ckpts=1, check_finite=False),
        model=ToyModel(nan_at=3)).train()
    assert _files(work_dir) == ['iter_6.pth']
