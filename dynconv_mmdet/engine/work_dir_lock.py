# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""One training run per work directory.

Two runs writing into one work directory overwrite each other's checkpoints
and leave a ``last_checkpoint`` that names either's; mmengine does not
notice. ``tools/train.py`` therefore takes a lock, the file
``<work_dir>/train.lock``, before it writes anything there, and the second
run stops with a message naming the holder.

* The lock is taken by the process of rank 0 only (the other ranks write
  nothing of their own). Its file is created atomically (a complete
  temporary file hard-linked to the final name, which fails if it exists;
  ``O_CREAT | O_EXCL`` where links are not supported) and records the host,
  the process id, when and how the run was started.
* It is released on any exit of the process: leaving the ``with`` block
  (normal end, exception, ``sys.exit``, Ctrl-C), interpreter exit
  (``atexit``), ``SIGTERM`` and ``SIGHUP`` (the lock is removed, then the
  signal takes its usual course). Only the process that took it removes
  it; a forked child (a data loader worker) leaves it alone.
* ``SIGKILL`` (or a power cut) leaves the file behind. A lock of this host
  whose process is gone (``os.kill(pid, 0)``; a reused pid is told by the
  process start time, a restart by the boot id) is stale: the next run takes
  it over and says so. A lock of another host cannot be checked from here:
  the run stops, naming the host and process, and says which file to remove
  once no run uses the folder.
"""
import atexit
import datetime
import errno
import json
import os
import os.path as osp
import shlex
import signal
import socket
import sys
import threading
import uuid
from typing import Any, Callable, Dict, Optional

LOCK_NAME = 'train.lock'
#: Signals whose default action ends the process without Python's cleanup.
_RELEASE_SIGNALS = tuple(
    getattr(signal, name) for name in ('SIGTERM', 'SIGHUP')
    if hasattr(signal, name))


class WorkDirLockError(RuntimeError):
    """The work directory's lock cannot be taken; the message says why and
    what to do."""


class WorkDirLocked(WorkDirLockError):
    """The work directory is in use by another run (or its lock cannot be
    read); the message names the holder and says what to do."""


def _read_text(path: str) -> Optional[str]:
    """A small text file's stripped content; None if it cannot be read."""
    try:
        with open(path, encoding='utf-8') as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _boot_id() -> Optional[str]:
    """This boot of the machine (Linux), to tell pids of an earlier boot."""
    return _read_text('/proc/sys/kernel/random/boot_id')


def _process_start(pid: int) -> Optional[str]:
    """When process ``pid`` started (clock ticks since boot, Linux), to tell
    a reused pid; None where unknown."""
    stat = _read_text(f'/proc/{pid}/stat')
    if not stat:
        return None
    # the command name (field 2) may hold spaces: split after its ')'
    fields = stat[stat.rfind(')') + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _process_exists(pid: int) -> bool:
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


def rank_of_launcher(launcher: str = 'none') -> int:
    """This process's global rank before ``torch.distributed`` is set up,
    from the variables its launcher sets (0 for ``launcher='none'``)."""
    if launcher == 'none':
        return 0
    names = {
        'pytorch': ('RANK', ),
        'slurm': ('SLURM_PROCID', ),
        'mpi': ('OMPI_COMM_WORLD_RANK', 'PMI_RANK'),
    }.get(launcher, ('RANK', ))
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


class WorkDirLock:
    """The lock of one work directory (see the module doc).

    Use as ``with WorkDirLock(work_dir):`` or call :meth:`acquire` and
    :meth:`release`; released on any exit of the process either way.

    Args:
        work_dir (str): The work directory (created if missing).
        enabled (bool): Take the lock; False (ranks other than 0) makes a
            lock that does nothing. Defaults to True.
        log (Callable[[str], None], optional): Where the take-over of a
            stale lock is reported. Defaults to ``warning: ...`` on
            stderr.
    """

    def __init__(self,
                 work_dir: str,
                 enabled: bool = True,
                 log: Optional[Callable[[str], None]] = None) -> None:
        self.work_dir = osp.abspath(work_dir)
        self.path = osp.join(self.work_dir, LOCK_NAME)
        self.enabled = enabled
        self._log = log or (lambda message: print(
            f'warning: {message}', file=sys.stderr, flush=True))
        self._token: Optional[str] = None
        self._owner_pid: Optional[int] = None
        self._dir_created_by: Optional[int] = None
        self._previous_handlers: Dict[int, Any] = {}

    # -- public ------------------------------------------------------------
    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._token is not None and self._owner_pid == os.getpid()

    def acquire(self) -> 'WorkDirLock':
        """Take the lock (once; a no-op when disabled or already held).

        Returns:
            WorkDirLock: ``self``.

        Raises:
            WorkDirLocked: Another live run (or a run on another host) holds
                it, or its file cannot be read.
            WorkDirLockError: The lock file cannot be written.
        """
        if not self.enabled or self.held:
            return self
        try:
            if not osp.isdir(self.work_dir):
                os.makedirs(self.work_dir, exist_ok=True)
                self._dir_created_by = os.getpid()
            self._acquire()
        except OSError as err:
            self._remove_created_dir()
            raise WorkDirLockError(
                f'could not write the lock file {self.path} of the work '
                f'directory: {type(err).__name__}: {err}. Check that '
                f'{self.work_dir} can be written, or choose another folder '
                'with --work-dir.') from err
        return self

    def _acquire(self) -> None:
        """Create the lock file, taking over a stale one (a few tries, in
        case other runs race for it)."""
        info = self._info()
        for _ in range(3):
            if self._create(info):
                self._token, self._owner_pid = info['token'], os.getpid()
                self._install_release_handlers()
                return
            holder = self._read_holder()
            if holder is None:
                continue  # released in between: try again
            reason = self._stale_reason(holder)
            if reason is None:
                self._remove_created_dir()
                raise WorkDirLocked(self._held_message(holder))
            if self._take_over(holder):
                self._log(
                    f'took over the lock {self.path} of {_describe(holder)}: '
                    f'{reason}. That run ended without releasing it (it was '
                    'killed, or the machine restarted); its last checkpoint '
                    'is kept, and --resume continues from it.')
        self._remove_created_dir()
        raise WorkDirLocked(
            f'could not take the lock {self.path}: other runs keep taking '
            'and releasing it. Make sure that only one run trains into '
            f'{self.work_dir}.')

    def release(self) -> None:
        """Remove the lock file if this process took it and it is still
        ours; idempotent."""
        if not self.held:
            return
        holder = self._read_holder()
        if holder is not None and holder.get('token') == self._token:
            try:
                os.remove(self.path)
            except OSError:
                pass
        self._token = None
        self._restore_handlers()
        try:
            atexit.unregister(self.release)
        except Exception:
            pass
        self._remove_created_dir()

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc_info: Any) -> None:
        self.release()

    # -- taking ------------------------------------------------------------
    def _info(self) -> Dict[str, Any]:
        """What the lock file records about this run."""
        pid = os.getpid()
        now = datetime.datetime.now().astimezone()
        return dict(
            host=socket.gethostname(),
            pid=pid,
            started=now.isoformat(timespec='seconds'),
            boot_id=_boot_id(),
            process_start=_process_start(pid),
            command=' '.join(
                shlex.quote(a) for a in [sys.executable] + sys.argv),
            work_dir=self.work_dir,
            token=uuid.uuid4().hex)

    def _create(self, info: Dict[str, Any]) -> bool:
        """Create the lock file holding ``info``; False if it exists."""
        text = json.dumps(info, indent=1) + '\n'
        tmp = osp.join(
            self.work_dir, f'.{LOCK_NAME}.tmp-{os.getpid()}-'
            f'{info["token"][:8]}')
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError as err:  # no hard links here: O_EXCL instead
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP,
                                 errno.EXDEV, errno.ENOSYS, errno.EACCES):
                raise
            return self._create_exclusive(text)
        finally:
            try:
                os.remove(tmp)
            except OSError:
                pass

    def _create_exclusive(self, text: str) -> bool:
        """``O_CREAT | O_EXCL`` creation (no hard links on this file
        system); False if the file exists."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        return True

    def _read_holder(self) -> Optional[Dict[str, Any]]:
        """The lock file's content; None if it is gone; ``{'unreadable':
        reason}`` if it cannot be read."""
        try:
            with open(self.path, encoding='utf-8') as f:
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

    def _stale_reason(self, holder: Dict[str, Any]) -> Optional[str]:
        """Why ``holder``'s run is over for sure, or None if it may run."""
        if 'unreadable' in holder or holder['host'] != socket.gethostname():
            return None
        pid = holder['pid']
        boot = _boot_id()
        if holder.get('boot_id') and boot and holder['boot_id'] != boot:
            return 'this machine restarted since'
        if not _process_exists(pid):
            return f'no process {pid} runs on this host any more'
        started = holder.get('process_start')
        now = _process_start(pid)
        if started and now and started != now:
            return (f'process {pid} is another program now (the process id '
                    'was reused)')
        return None

    def _take_over(self, stale: Dict[str, Any]) -> bool:
        """Remove the stale lock ``stale``; False if it changed meanwhile
        (another run took it over first)."""
        aside = f'{self.path}.stale-{os.getpid()}-{uuid.uuid4().hex[:8]}'
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False
        moved = _read_json(aside)
        if moved is not None and moved.get('token') != stale.get('token'):
            # a live lock taken meanwhile: put it back unless replaced
            try:
                os.link(aside, self.path)
            except OSError:
                pass
            os.remove(aside)
            return False
        os.remove(aside)
        return True

    # -- messages ----------------------------------------------------------
    def _held_message(self, holder: Dict[str, Any]) -> str:
        """Why this run stops: who holds the lock and what to do."""
        folder = self.work_dir
        if 'unreadable' in holder:
            return (
                f'the work directory {folder} has a lock file, {self.path}, '
                f'that cannot be read ({holder["unreadable"]}), so another '
                'run may be using it. Two runs in one work directory '
                'overwrite each other\'s checkpoints. Train into another '
                'folder with --work-dir, or, if no run uses this one, remove '
                f'{self.path} and start again.')
        here = socket.gethostname()
        if holder['host'] == here:
            where = 'a process of this machine that is still running'
            remove = (f'If process {holder["pid"]} is not a training run '
                      f'into this folder, remove {self.path} and start '
                      'again.')
        else:
            where = (f'a process of another machine, which cannot be checked '
                     f'from this one ({here})')
            remove = (f'If you are sure that no run on {holder["host"]} '
                      'uses this folder any more (it was killed, or the '
                      f'machine went down), remove {self.path} and start '
                      'again.')
        command = holder.get('command')
        how = f', started with `{command}`' if command else ''
        return (f'the work directory {folder} is in use by another training '
                f'run: {self.path} is held by {_describe(holder)}, {where}'
                f'{how}. Two runs in one work directory overwrite each '
                'other\'s checkpoints and last_checkpoint. Wait until that '
                'run ends (`--resume` then continues it), or train into '
                f'another folder with --work-dir. {remove}')

    # -- release on any exit -----------------------------------------------
    def _install_release_handlers(self) -> None:
        """Release at interpreter exit and on ``SIGTERM`` / ``SIGHUP``
        (signal handlers only from the main thread; ignored signals stay
        ignored)."""
        atexit.register(self.release)
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in _RELEASE_SIGNALS:
            try:
                previous = signal.getsignal(signum)
                if previous is signal.SIG_IGN or previous is None:
                    continue  # ignored: the run goes on, so does the lock
                signal.signal(signum, self._on_signal)
                self._previous_handlers[signum] = previous
            except (ValueError, OSError):
                pass

    def _restore_handlers(self) -> None:
        """Put back the signal handlers found at :meth:`acquire`."""
        if os.getpid() != self._owner_pid:
            return
        for signum, previous in list(self._previous_handlers.items()):
            try:
                if signal.getsignal(signum) == self._on_signal:
                    signal.signal(signum, previous)
            except (ValueError, OSError):
                pass
        self._previous_handlers.clear()

    def _on_signal(self, signum: int, frame: Any) -> None:
        """Release, then let the signal take its usual course (the previous
        handler, or the default action: the process ends)."""
        previous = self._previous_handlers.get(signum, signal.SIG_DFL)
        if os.getpid() == self._owner_pid:
            self.release()
        else:  # a forked child: the lock is its parent's
            signal.signal(signum, previous)
        if callable(previous):
            previous(signum, frame)
        else:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def _remove_created_dir(self) -> None:
        """Remove the work directory again if this lock created it and
        nothing was written there."""
        if self._dir_created_by != os.getpid():
            return
        self._dir_created_by = None
        try:
            os.rmdir(self.work_dir)
        except OSError:
            pass


def _read_json(path: str) -> Optional[Dict[str, Any]]:
    """A JSON object file's content; None if it is not one."""
    text = _read_text(path)
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _describe(holder: Dict[str, Any]) -> str:
    """``process 123 on host h (since 2024-05-01T10:00:00+02:00)``."""
    since = holder.get('started')
    since = f' (since {since})' if since else ''
    return f'process {holder["pid"]} on host {holder["host"]}{since}'


def acquire_work_dir_lock(
        work_dir: str,
        launcher: str = 'none',
        log: Optional[Callable[[str], None]] = None) -> WorkDirLock:
    """Take the lock of ``work_dir`` in the process of rank 0 (see the
    module doc); other ranks get a lock that does nothing.

    Args:
        work_dir (str): The run's work directory (created if missing).
        launcher (str): ``cfg.launcher`` (``'none'``, ``'pytorch'``,
            ``'slurm'``, ``'mpi'``), which says where the rank is read.
        log (Callable[[str], None], optional): Where a stale lock's take-over
            is reported; default: stderr.

    Returns:
        WorkDirLock: Held; release it with ``with`` or :meth:`release`.

    Raises:
        WorkDirLocked: Another run holds the lock.
    """
    lock = WorkDirLock(
        work_dir, enabled=rank_of_launcher(launcher) == 0, log=log)
    return lock.acquire()
