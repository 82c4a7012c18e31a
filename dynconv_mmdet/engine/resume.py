# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Which checkpoint ``tools/train.py --resume`` continues from.

mmengine resumes from the file ``<work_dir>/last_checkpoint`` names, without
checking it: a pointer to a deleted or truncated file stops the run with
``FileNotFoundError`` or an unpickling error, and a work directory without
any checkpoint logs "Auto resumed from the latest checkpoint None" and
quietly starts from scratch. :func:`find_resume_checkpoint` checks that the
named checkpoint loads, falls back to the newest checkpoint in the folder
that does, and says which one it picked and why.
"""
import logging
import os
import os.path as osp
import re
from typing import List, Optional, Tuple, Union

from mmengine.logging import MMLogger, print_log

from dynconv_mmdet.checkpoint import CheckpointError, safe_torch_load

POINTER = 'last_checkpoint'
_STEP = re.compile(r'(\d+)\.pth$')


def _log(logger: Optional[Union[logging.Logger, str]], message: str,
         level: int) -> None:
    print_log(message, logger=logger or 'current', level=level)


def _problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be resumed from, or None if it can."""
    if not osp.isfile(path):
        return 'does not exist'
    try:
        ckpt = safe_torch_load(path)
    except (CheckpointError, OSError) as err:
        return f'does not load ({err})'
    except Exception as err:  # a damaged file can fail in many ways
        return f'does not load ({type(err).__name__}: {err})'
    missing = [k for k in ('meta', 'state_dict') if k not in ckpt]
    if missing:
        return f'is not a training checkpoint (no {" or ".join(missing)})'
    return None


def _read_pointer(work_dir: str) -> Tuple[Optional[str], Optional[str]]:
    """``(named checkpoint, problem)`` from ``work_dir/last_checkpoint``."""
    pointer = osp.join(work_dir, POINTER)
    if not osp.isfile(pointer):
        return None, f'{pointer} does not exist'
    try:
        with open(pointer, encoding='utf-8') as f:
            named = f.read().strip()
    except (OSError, UnicodeDecodeError) as err:
        return None, f'{pointer} cannot be read ({err})'
    if not named:
        return None, f'{pointer} is empty'
    return named, None


def _candidates(work_dir: str, exclude: List[str]) -> List[str]:
    """Checkpoint files of ``work_dir``, newest first.

    Newest means the highest epoch / iteration number in the file name
    (``epoch_12.pth``, ``iter_6000.pth``), then the latest modification
    time. Hidden files (partial saves) and ``best_*`` checkpoints (saved
    without the optimizer state) are left out.
    """
    excluded = {osp.realpath(p) for p in exclude}
    found = []
    for name in os.listdir(work_dir):
        path = osp.join(work_dir, name)
        if (name.startswith(('.', 'best_')) or not name.endswith('.pth')
                or not osp.isfile(path) or osp.realpath(path) in excluded):
            continue
        match = _STEP.search(name)
        step = int(match.group(1)) if match else -1
        found.append((step, osp.getmtime(path), name, path))
    found.sort(reverse=True)
    return [item[-1] for item in found]


def find_resume_checkpoint(
    work_dir: str,
    logger: Optional[Union[logging.Logger, MMLogger, str]] = None
) -> Optional[str]:
    """The checkpoint to resume training from in ``work_dir``.

    1. The checkpoint ``work_dir/last_checkpoint`` names (as written, or
       under ``work_dir`` if the folder was moved), if it loads with
       ``weights_only=True`` and holds ``meta`` and ``state_dict``.
    2. Otherwise the newest checkpoint in ``work_dir`` that loads (see
       :func:`_candidates` for the order); a warning says why the pointer
       was not used and which files were skipped.
    3. Otherwise None, with a log line saying that training starts from
       scratch.

    Args:
        work_dir (str): The run's work directory.
        logger (logging.Logger or str, optional): Where to log (a logger or
            the name of an MMLogger). Defaults to the current MMLogger.

    Returns:
        str or None: Path of the checkpoint to resume from.
    """
    if not osp.isdir(work_dir):
        _log(
            logger, f'--resume: the work directory {work_dir} does not '
            'exist, so there is no checkpoint to resume from: training '
            'starts from scratch.', logging.WARNING)
        return None

    named, reason = _read_pointer(work_dir)
    tried: List[str] = []
    if named is not None:
        options = [named]
        moved = osp.join(work_dir, osp.basename(named))
        if osp.realpath(moved) != osp.realpath(named):
            options.append(moved)
        problems = []
        for path in options:
            problem = _problem(path)
            tried.append(path)
            if problem is None:
                _log(
                    logger, f'Resuming from {path} (named by '
                    f'{osp.join(work_dir, POINTER)}).', logging.INFO)
                return path
            problems.append(f'{path} {problem}')
        reason = (f'{osp.join(work_dir, POINTER)} names {named}, but ' +
                  '; '.join(problems))

    skipped = []
    for path in _candidates(work_dir, exclude=tried):
        problem = _problem(path)
        if problem is None:
            also = (f' (skipped: {"; ".join(skipped)})' if skipped else '')
            _log(
                logger, f'--resume: {reason}. Resuming from {path} instead, '
                f'the newest checkpoint in {work_dir} that loads{also}.',
                logging.WARNING)
            return path
        skipped.append(f'{osp.basename(path)} {problem}')

    also = (f'; no other checkpoint loads: {"; ".join(skipped)}'
            if skipped else f'; {work_dir} holds no other checkpoint')
    _log(
        logger, f'--resume: no checkpoint to resume from ({reason}{also}): '
        'training starts from scratch.', logging.WARNING)
    return None
