# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Files written so that a crash or a full disk never leaves a half one:
the helpers of :class:`~.atomic_checkpoint_hook.AtomicCheckpointHook`."""
import os
import os.path as osp
import shutil
from typing import Optional

#: Suffix of the temporary files (``.<name>.tmp-<pid>``) before their rename.
TMP_SUFFIX = '.tmp-'


def fsync_path(path: str) -> None:
    """Flush a file (or a folder's entries) to the storage device."""
    flags = os.O_RDONLY
    if osp.isdir(path):
        flags |= getattr(os, 'O_DIRECTORY', 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    """Make a rename inside ``path`` durable; a no-op where folders cannot
    be opened (Windows)."""
    try:
        fsync_path(path)
    except (PermissionError, IsADirectoryError):
        pass


def write_text_atomic(path: str, text: str) -> None:
    """Replace the file ``path`` by ``text`` so that readers see either the
    old or the new content, never a partial one.

    Raises:
        OSError: If the file cannot be written; ``path`` is then unchanged
            and no temporary file is left.
    """
    folder = osp.dirname(osp.abspath(path))
    tmp_path = osp.join(folder,
                        f'.{osp.basename(path)}{TMP_SUFFIX}{os.getpid()}')
    try:
        with open(tmp_path, 'w', encoding='utf-8') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except OSError:
        remove_quietly(tmp_path)
        raise
    fsync_dir(folder)


def remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError:
        pass


def remove_checkpoint(path: str) -> bool:
    """Remove a checkpoint file (or a DeepSpeed checkpoint folder)."""
    if osp.isfile(path):
        os.remove(path)
        return True
    if osp.isdir(path):
        shutil.rmtree(path)
        return True
    return False


def checkpoint_size(path: str) -> Optional[int]:
    """Bytes of a checkpoint file (or DeepSpeed folder); None if unknown."""
    try:
        if osp.isdir(path):
            return sum(
                osp.getsize(osp.join(root, name))
                for root, _, names in os.walk(path) for name in names)
        return osp.getsize(path)
    except OSError:
        return None


def format_size(size: int) -> str:
    """``size`` bytes in the largest unit that keeps it >= 1 (``'1.5 GB'``,
    decimal units, as ``df -H``)."""
    value = float(size)
    for unit in ('bytes', 'kB', 'MB', 'GB'):
        if value < 1000:
            return (f'{size} bytes'
                    if unit == 'bytes' else f'{value:.1f} {unit}')
        value /= 1000
    return f'{value:.1f} TB'
