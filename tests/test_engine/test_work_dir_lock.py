# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The work directory lock: one run per folder, released on any exit, a lock
left by a killed run taken over with a message, a lock of another host
refused with what to do."""
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from dynconv_mmdet.engine import (WorkDirLock, WorkDirLocked, WorkDirLockError,
                                  acquire_work_dir_lock, work_dir_lock)
from dynconv_mmdet.engine.work_dir_lock import LOCK_NAME, rank_of_launcher


def _lock_file(work_dir) -> str:
    return osp.join(str(work_dir), LOCK_NAME)


def _holder(work_dir) -> dict:
    with open(_lock_file(work_dir)) as f:
        return json.load(f)


def _write_lock(work_dir, **fields) -> str:
    """A lock file as another run would have left it."""
    holder = dict(
        host=socket.gethostname(),
        pid=os.getpid(),
        started='2024-05-01T10:00:00+00:00',
        command='python tools/train.py cfg.py',
        token='f' * 32)
    holder.update(fields)
    os.makedirs(str(work_dir), exist_ok=True)
    with open(_lock_file(work_dir), 'w') as f:
        json.dump(holder, f)
    return _lock_file(work_dir)


def _gone_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_taken_and_released(tmp_path):
    work_dir = tmp_path / 'work'
    with WorkDirLock(str(work_dir)) as lock:
        assert lock.held
        holder = _holder(work_dir)
        assert holder['pid'] == os.getpid()
        assert holder['host'] == socket.gethostname()
        assert holder['started'] and holder['work_dir'] == str(work_dir)
        assert os.listdir(str(work_dir)) == [LOCK_NAME]  # no temporary file
    assert not lock.held
    assert not osp.exists(_lock_file(work_dir))
    # a folder the lock created and nothing else used is removed again
    assert not osp.exists(str(work_dir))
    lock.release()  # idempotent


def test_second_lock_is_refused_while_held(tmp_path):
    work_dir = str(tmp_path)
    first = WorkDirLock(work_dir).acquire()
    try:
        with pytest.raises(WorkDirLocked) as info:
            WorkDirLock(work_dir).acquire()
        message = str(info.value)
        started = _holder(work_dir)['started']
        assert f'the work directory {work_dir} is in use' in message
        assert f'process {os.getpid()} on host {socket.gethostname()}' \
            in message
        assert f'since {started}' in message
        assert 'still running' in message
        assert '--work-dir' in message and 'Wait until' in message
        assert f'remove {_lock_file(work_dir)}' in message
        assert first.held and _holder(work_dir)['pid'] == os.getpid()
    finally:
        first.release()
    assert not osp.exists(_lock_file(work_dir))


def test_released_after_an_exception(tmp_path):
    work_dir = str(tmp_path)
    with pytest.raises(KeyError):
        with WorkDirLock(work_dir):
            assert osp.exists(_lock_file(work_dir))
            raise KeyError('boom')
    assert not osp.exists(_lock_file(work_dir))
    with WorkDirLock(work_dir):  # and can be taken again
        pass


def test_stale_lock_of_a_gone_process_is_taken_over(tmp_path):
    work_dir = str(tmp_path)
    pid = _gone_pid()
    _write_lock(work_dir, pid=pid)
    said = []
    with WorkDirLock(work_dir, log=said.append) as lock:
        assert lock.held and _holder(work_dir)['pid'] == os.getpid()
    assert len(said) == 1
    assert f'took over the lock {_lock_file(work_dir)}' in said[0]
    assert f'process {pid} on host {socket.gethostname()}' in said[0]
    assert f'no process {pid} runs on this host any more' in said[0]
    assert not [n for n in os.listdir(work_dir) if 'stale' in n]


def test_take_over_is_printed_by_default(tmp_path, capsys):
    _write_lock(tmp_path, pid=_gone_pid())
    with WorkDirLock(str(tmp_path)):
        pass
    assert 'warning: took over the lock' in capsys.readouterr().err


@pytest.mark.parametrize('fields, reason', [
    (dict(process_start='1'), 'the process id was reused'),
    (dict(boot_id='another-boot'), 'this machine restarted since'),
])
def test_reused_pid_or_restart_is_stale(tmp_path, fields, reason):
    # this very process stands for the reused pid
    _write_lock(tmp_path, **fields)
    said = []
    with WorkDirLock(str(tmp_path), log=said.append):
        pass
    assert reason in said[0]


def test_lock_of_another_host_is_refused(tmp_path):
    path = _write_lock(tmp_path, host='gpu-node-7', pid=4321)
    with pytest.raises(WorkDirLocked) as info:
        WorkDirLock(str(tmp_path)).acquire()
    message = str(info.value)
    assert 'process 4321 on host gpu-node-7' in message
    assert 'cannot be checked' in message
    assert 'no run on gpu-node-7 uses this folder' in message
    assert f'remove {path}' in message
    assert _holder(tmp_path)['host'] == 'gpu-node-7'  # left alone


def test_unreadable_lock_is_refused(tmp_path):
    path = _lock_file(tmp_path)
    with open(path, 'w') as f:
        f.write('not json')
    with pytest.raises(WorkDirLocked, match='cannot be read') as info:
        WorkDirLock(str(tmp_path)).acquire()
    assert f'remove {path}' in str(info.value)
    assert open(path).read() == 'not json'


def test_a_lock_file_that_cannot_be_written(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    with pytest.raises(WorkDirLockError, match='could not write the lock'):
        WorkDirLock(str(blocker / 'work')).acquire()


def test_only_rank_0_takes_it(tmp_path, monkeypatch):
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setenv('SLURM_PROCID', '0')
    assert rank_of_launcher('none') == 0
    assert rank_of_launcher('pytorch') == 1
    assert rank_of_launcher('slurm') == 0
    lock = acquire_work_dir_lock(str(tmp_path), launcher='pytorch')
    assert not lock.held and not osp.exists(_lock_file(tmp_path))
    lock = acquire_work_dir_lock(str(tmp_path), launcher='slurm')
    assert lock.held
    lock.release()


@pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs fork')
def test_a_forked_child_leaves_the_lock_alone(tmp_path):
    with WorkDirLock(str(tmp_path)) as lock:
        pid = os.fork()
        if pid == 0:  # a data loader worker, say
            lock.release()
            os._exit(0)
        os.waitpid(pid, 0)
        assert osp.exists(_lock_file(tmp_path)) and lock.held


# A process that takes the lock, says so and waits to be signalled. The
# module needs only the standard library: it is loaded from its file, which
# spares the child the import of mmdet.
_HOLDER = textwrap.dedent("""
    import importlib.util, sys, time
    spec = importlib.util.spec_from_file_location('lock', sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lock = module.WorkDirLock(sys.argv[2]).acquire()
    print('held', flush=True)
    time.sleep(120)
""")


def _start_holder(work_dir: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, '-c', _HOLDER, work_dir_lock.__file__, work_dir],
        stdout=subprocess.PIPE,
        text=True)
    assert proc.stdout.readline().strip() == 'held'
    return proc


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGHUP])
def test_released_when_terminated(tmp_path, signum):
    work_dir = str(tmp_path)
    proc = _start_holder(work_dir)
    try:
        with pytest.raises(WorkDirLocked, match=f'process {proc.pid} '):
            WorkDirLock(work_dir).acquire()
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == -signum  # the signal's usual end
    finally:
        proc.kill()
    assert not osp.exists(_lock_file(work_dir))


def test_killed_holder_leaves_a_stale_lock_that_is_taken_over(tmp_path):
    work_dir = str(tmp_path)
    proc = _start_holder(work_dir)
    proc.kill()
    proc.wait(timeout=60)
    assert _holder(work_dir)['pid'] == proc.pid  # SIGKILL: nothing ran
    said = []
    with WorkDirLock(work_dir, log=said.append):
        assert _holder(work_dir)['pid'] == os.getpid()
    assert f'process {proc.pid} on host' in said[0]
