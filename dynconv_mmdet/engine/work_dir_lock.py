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

The lock object is here; what its file records, the liveness checks and
the messages are in :mod:`dynconv_mmdet.engine.work_dir_lock_record`.
"""
import atexit
import errno
import json
import os
import os.path as osp
import signal
import sys
import threading
import uuid
from typing import Any, Callable, Dict, Optional

if __package__:
    from .work_dir_lock_record import (describe, held_message, new_record,
                                       read_json, read_record, stale_reason)
else:  # this file loaded on its own, without the package: its record too
    import importlib.util
    _spec = importlib.util.spec_from_file_location(
        'work_dir_lock_record',
        osp.join(
            osp.dirname(osp.abspath(__file__)), 'work_dir_lock_record.py'))
    _record = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_record)
    describe, held_message = _record.describe, _record.held_message
    new_record, read_json = _record.new_record, _record.read_json
    read_record, stale_reason = _record.read_record, _record.stale_reason

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
        info = new_record(self.work_dir)
        for _ in range(3):
            if self._create(info):
                self._token, self._owner_pid = info['token'], os.getpid()
                self._install_release_handlers()
                return
            holder = read_record(self.path)
            if holder is None:
                continue  # released in between: try again
            reason = stale_reason(holder)
            if reason is None:
                self._remove_created_dir()
                raise WorkDirLocked(
                    held_message(holder, self.work_dir, self.path))
            if self._take_over(holder):
                self._log(
                    f'took over the lock {self.path} of {describe(holder)}: '
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
        holder = read_record(self.path)
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

    def _take_over(self, stale: Dict[str, Any]) -> bool:
        """Remove the stale lock ``stale``; False if it changed meanwhile
        (another run took it over first)."""
        aside = f'{self.path}.stale-{os.getpid()}-{uuid.uuid4().hex[:8]}'
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False
        moved = read_json(aside)
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
