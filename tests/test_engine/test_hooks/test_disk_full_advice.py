# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""What AtomicCheckpointHook advises when a save finds the disk full.

Keeping fewer checkpoints frees space only where more than one is kept: with
``max_keep_ckpts=1`` (or a single checkpoint on disk) an atomic save needs
room for two, the previous checkpoint and the new one, and the message must
say so instead of advising fewer checkpoints.
"""
import errno
import os.path as osp

import pytest
from mmengine.fileio.backends import LocalBackend

import dynconv_mmdet  # noqa: F401
from dynconv_mmdet.engine import CheckpointSaveError
from dynconv_mmdet.engine.hooks.atomic_files import format_size
from dynconv_mmdet.testing import toy_runner


def _disk_full_at(monkeypatch, name: str) -> None:
    """Make the save of the file ``name`` fail with ENOSPC."""
    real_put = LocalBackend.put

    def put(self, obj, filepath):
        if name in osp.basename(str(filepath)):
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put)


def _message(tmp_path, monkeypatch, fail_on: str, **checkpoint) -> str:
    _disk_full_at(monkeypatch, fail_on)
    runner = toy_runner(
        str(tmp_path),
        max_iters=8,
        checkpoint=dict(
            type='AtomicCheckpointHook',
            interval=2,
            by_epoch=False,
            **checkpoint))
    with pytest.raises(CheckpointSaveError) as info:
        runner.train()
    return str(info.value)


def test_one_checkpoint_kept_needs_room_for_two(tmp_path, monkeypatch):
    message = _message(tmp_path, monkeypatch, 'iter_4', max_keep_ckpts=1)
    previous = osp.join(str(tmp_path), 'iter_2.pth')
    assert 'room for two checkpoints' in message
    assert 'keeping fewer checkpoints would not help' in message
    assert 'max_keep_ckpts is 1' in message
    assert 'keep fewer checkpoints with' not in message
    size = format_size(osp.getsize(previous))
    assert f'about {size} (the size of {previous})' in message
    assert 'Free space in' in message and '--work-dir' in message
    assert '--resume' in message


def test_one_checkpoint_on_disk_needs_room_for_two(tmp_path, monkeypatch):
    """max_keep_ckpts=3 but only the first checkpoint exists yet."""
    message = _message(tmp_path, monkeypatch, 'iter_4', max_keep_ckpts=3)
    assert 'room for two checkpoints' in message
    assert '1 checkpoint(s) of this run on disk' in message
    assert 'keep fewer checkpoints with' not in message


def test_several_checkpoints_kept_advises_fewer(tmp_path, monkeypatch):
    message = _message(tmp_path, monkeypatch, 'iter_6', max_keep_ckpts=3)
    assert 'keep fewer checkpoints with default_hooks.checkpoint.' \
        'max_keep_ckpts: 2 are on disk' in message
    assert 'room for two' not in message
    assert 'Free space in' in message


@pytest.mark.parametrize('size, text', [(512, '512 bytes'), (1_500, '1.5 kB'),
                                        (2_345_678, '2.3 MB'),
                                        (3_000_000_000, '3.0 GB')])
def testformat_size(size, text):
    assert format_size(size) == text
