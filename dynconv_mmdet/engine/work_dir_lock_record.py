# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""What a work directory's lock file records, and whether its run is over.

The record of :class:`~dynconv_mmdet.engine.work_dir_lock.WorkDirLock`
(host, process id, when and how the run was started, the boot and the
process start time that tell a restart or a reused pid), reading it back,
the liveness checks that tell a stale lock, and the message that names a
live holder. No state: the lock object is in
:mod:`dynconv_mmdet.engine.work_dir_lock`.
"""
import datetime
import json
import os
import shlex
import socket
import sys
import uuid
from typing import Any, Dict, Optional


def _read_text(path: str) -> Optional[str]:
    """A small text file's stripped content; None if it cannot be read."""
    try:
        with open(path, encoding='utf-8') as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def boot_id() -> Optional[str]:
    """This boot of the machine (Linux), to tell pids of an earlier boot."""
    return _read_text('/proc/sys/kernel/random/boot_id')


def process_start(pid: int) -> Optional[str]:
    """When process ``pid`` started (clock ticks since boot, Linux), to tell
    a reused pid; None where unknown."""
    stat = _read_text(f'/proc/{pid}/stat')
    if not stat:
        return None
    # the command name (field 2) may hold spaces: split after its ')'
    fields = stat[stat.rfind(')') + 2:].split()
    return fields[19] if len(fields) > 19 else None


def process_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return True
    return True


def new_record(work_dir: str) -> Dict[str, Any]:
    """What the lock file records about this run (a fresh ``token``)."""
    pid = os.getpid()
    now = datetime.datetime.now().astimezone()
    return dict(
        host=socket.gethostname(),
        pid=pid,
        started=now.isoformat(timespec='seconds'),
        boot_id=boot_id(),
        process_start=process_start(pid),
        command=' '.join(shlex.quote(a) for a in [sys.executable] + sys.argv),
        work_dir=work_dir,
        token=uuid.uuid4().hex)


def read_record(path: str) -> Optional[Dict[str, Any]]:
    """The lock file's content; None if it is gone; ``{'unreadable':
    reason}`` if it cannot be read."""
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        return dict(unreadable=f'{type(err).__name__}: {err}')
    try:
        holder = json.loads(text)
    except ValueError:
        holder = None
    if not isinstance(holder, dict) or not isinstance(
            holder.get('pid'), int) or not holder.get('host'):
        return dict(unreadable='it does not hold the host and process '
                    'of a training run')
    return holder


def read_json(path: str) -> Optional[Dict[str, Any]]:
    """A JSON object file's content; None if it is not one."""
    text = _read_text(path)
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def stale_reason(holder: Dict[str, Any]) -> Optional[str]:
    """Why ``holder``'s run is over for sure, or None if it may run."""
    if 'unreadable' in holder or holder['host'] != socket.gethostname():
        return None
    pid = holder['pid']
    boot = boot_id()
    if holder.get('boot_id') and boot and holder['boot_id'] != boot:
        return 'this machine restarted since'
    if not process_exists(pid):
        return f'no process {pid} runs on this host any more'
    started = holder.get('process_start')
    now = process_start(pid)
    if started and now and started != now:
        return (f'process {pid} is another program now (the process id '
                'was reused)')
    return None


def describe(holder: Dict[str, Any]) -> str:
    """``process 123 on host h (since 2024-05-01T10:00:00+02:00)``."""
    since = holder.get('started')
    since = f' (since {since})' if since else ''
    return f'process {holder["pid"]} on host {holder["host"]}{since}'


def held_message(holder: Dict[str, Any], work_dir: str, path: str) -> str:
    """Why a run stops: who holds the lock ``path`` of ``work_dir`` and
    what to do."""
    folder = work_dir
    if 'unreadable' in holder:
        return (f'the work directory {folder} has a lock file, {path}, '
                f'that cannot be read ({holder["unreadable"]}), so another '
                'run may be using it. Two runs in one work directory '
                'overwrite each other\'s checkpoints. Train into another '
                'folder with --work-dir, or, if no run uses this one, remove '
                f'{path} and start again.')
    here = socket.gethostname()
    if holder['host'] == here:
        where = 'a process of this machine that is still running'
        remove = (f'If process {holder["pid"]} is not a training run '
                  f'into this folder, remove {path} and start '
                  'again.')
    else:
        where = (f'a process of another machine, which cannot be checked '
                 f'from this one ({here})')
        remove = (f'If you are sure that no run on {holder["host"]} '
                  'uses this folder any more (it was killed, or the '
                  f'machine went down), remove {path} and start '
                  'again.')
    command = holder.get('command')
    how = f', started with `{command}`' if command else ''
    return (f'the work directory {folder} is in use by another training '
            f'run: {path} is held by {describe(holder)}, {where}'
            f'{how}. Two runs in one work directory overwrite each '
            'other\'s checkpoints and last_checkpoint. Wait until that '
            'run ends (`--resume` then continues it), or train into '
            f'another folder with --work-dir. {remove}')
