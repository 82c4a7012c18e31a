# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""find_resume_checkpoint: the checkpoint ``--resume`` continues from.

mmengine resumes from whatever ``last_checkpoint`` names (a deleted or
truncated file stops the run) and, without a checkpoint, logs "Auto resumed
from the latest checkpoint None"."""
import logging
import os
import os.path as osp

import pytest
import torch

import dynconv_mmdet  # noqa: F401
from dynconv_mmdet.engine import find_resume_checkpoint


class _Unsafe:
    """Not allow-listed for ``weights_only=True`` loading."""

    def __init__(self) -> None:
        self.value = 1


class _Records(logging.Handler):

    def __init__(self) -> None:
        super().__init__()
        self.records = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        return '\n'.join(r.getMessage() for r in self.records)


@pytest.fixture
def logger():
    log = logging.getLogger('test_resume')
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = _Records()
    log.addHandler(handler)
    yield log, handler
    log.removeHandler(handler)


def _save(path: str, it: int, mtime: float = None) -> str:
    torch.save(
        dict(
            meta=dict(iter=it, epoch=0),
            state_dict={'w': torch.full((2, ), float(it))},
            optimizer=dict(state={}, param_groups=[])), path)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _truncate(path: str) -> str:
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 3])
    return path


def _point(work_dir: str, text: str) -> None:
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(text)


def test_the_checkpoint_the_pointer_names(tmp_path, logger):
    log, records = logger
    work_dir = str(tmp_path)
    _save(osp.join(work_dir, 'iter_2.pth'), 2)
    named = _save(osp.join(work_dir, 'iter_4.pth'), 4)
    _point(work_dir, named + '\n')
    assert find_resume_checkpoint(work_dir, log) == named
    assert f'Resuming from {named}' in records.text
    assert all(r.levelno == logging.INFO for r in records.records)


def test_moved_work_dir_uses_the_file_of_the_same_name(tmp_path, logger):
    log, records = logger
    work_dir = str(tmp_path)
    path = _save(osp.join(work_dir, 'iter_4.pth'), 4)
    _point(work_dir, '/somewhere/else/iter_4.pth')
    assert find_resume_checkpoint(work_dir, log) == path


@pytest.mark.parametrize('pointer', ['', 'gone', 'truncated', None])
def test_stale_or_empty_pointer_resumes_from_newest_that_loads(
        tmp_path, logger, pointer):
    """iter_6 truncated (a killed save), iter_4 loads: iter_4 is picked
    whatever the pointer says, and the log says why."""
    log, records = logger
    work_dir = str(tmp_path)
    _save(osp.join(work_dir, 'iter_2.pth'), 2, mtime=1000)
    good = _save(osp.join(work_dir, 'iter_4.pth'), 4, mtime=2000)
    broken = _truncate(_save(osp.join(work_dir, 'iter_6.pth'), 6, mtime=3000))
    # not candidates: a best checkpoint, a partial save, another file
    _save(osp.join(work_dir, 'best_coco_bbox_mAP_iter_6.pth'), 6, mtime=4000)
    _save(osp.join(work_dir, '.iter_8.pth.tmp-123'), 8, mtime=5000)
    with open(osp.join(work_dir, 'notes.txt'), 'w') as f:
        f.write('x')
    if pointer == 'gone':
        _point(work_dir, osp.join(work_dir, 'iter_8.pth'))
    elif pointer == 'truncated':
        _point(work_dir, broken)
    elif pointer is not None:
        _point(work_dir, pointer)

    assert find_resume_checkpoint(work_dir, log) == good
    message = records.text
    assert records.records[-1].levelno == logging.WARNING
    assert f'Resuming from {good} instead, the newest checkpoint in ' \
        f'{work_dir} that loads' in message
    expected_reason = {
        '': 'last_checkpoint is empty',
        'gone': 'iter_8.pth does not exist',
        'truncated': 'iter_6.pth does not load',
        None: 'last_checkpoint does not exist',
    }[pointer]
    assert expected_reason in message, message
    if pointer != 'truncated':
        assert 'skipped: iter_6.pth does not load' in message


def test_newest_is_the_highest_step_then_the_latest_file(tmp_path):
    work_dir = str(tmp_path)
    _save(osp.join(work_dir, 'iter_10.pth'), 10, mtime=1000)
    _save(osp.join(work_dir, 'iter_9.pth'), 9, mtime=2000)
    assert find_resume_checkpoint(work_dir) == osp.join(
        work_dir, 'iter_10.pth')


def test_unsafe_checkpoint_is_skipped(tmp_path, logger):
    """A checkpoint that needs arbitrary objects unpickled is not loaded:
    the next one is used."""
    log, records = logger
    work_dir = str(tmp_path)
    good = _save(osp.join(work_dir, 'iter_2.pth'), 2)
    torch.save(
        dict(meta=dict(iter=4), state_dict={}, extra=_Unsafe()),
        osp.join(work_dir, 'iter_4.pth'))
    assert find_resume_checkpoint(work_dir, log) == good
    assert 'iter_4.pth does not load (refusing to load' in records.text


@pytest.mark.parametrize('content', ['none', 'broken', 'no_dir'])
def test_no_checkpoint_starts_from_scratch(tmp_path, logger, content):
    log, records = logger
    work_dir = str(tmp_path / 'work')
    if content != 'no_dir':
        os.makedirs(work_dir)
    if content == 'broken':
        _truncate(_save(osp.join(work_dir, 'iter_2.pth'), 2))
        _point(work_dir, osp.join(work_dir, 'iter_2.pth'))
    assert find_resume_checkpoint(work_dir, log) is None
    message = records.text
    assert 'training starts from scratch' in message
    assert 'None' not in message
    if content == 'broken':
        assert 'iter_2.pth does not load' in message
