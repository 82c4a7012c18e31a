# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Whether a checkpoint may be loaded in part, here and now.

Loads are strict by default (:mod:`.model`, :mod:`.guard`). A partial load
is allowed inside :func:`partial_loading` (our tools' ``--partial-load`` and
``strict_load = False`` use it) or, for any entry point, with the
environment variable :data:`PARTIAL_LOAD_ENV` set to ``1``.
"""
import contextvars
import os
from contextlib import contextmanager
from typing import Iterator

#: Environment variable that lets any entry point load a partial checkpoint.
PARTIAL_LOAD_ENV = 'DYNCONV_PARTIAL_LOAD'

_partial = contextvars.ContextVar('dynconv_partial_load', default=False)


@contextmanager
def partial_loading() -> Iterator[None]:
    """Let guarded models load checkpoints that fit only in part."""
    token = _partial.set(True)
    try:
        yield
    finally:
        _partial.reset(token)


def partial_loading_allowed() -> bool:
    """Whether a partial load is allowed here (context or environment)."""
    return _partial.get() or os.environ.get(PARTIAL_LOAD_ENV, '') == '1'
