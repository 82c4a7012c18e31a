# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Old import places of the checkpoint names, kept with a warning."""
import importlib
import warnings
from typing import Any, Callable, Iterable

NEW_HOME = 'dynconv_mmdet.checkpoint'


def moved_names(old_module: str,
                names: Iterable[str],
                new_module: str = NEW_HOME) -> Callable[[str], Any]:
    """A module ``__getattr__`` that serves ``names`` from ``new_module``.

    Each access warns with a ``DeprecationWarning`` naming the new place.

    Args:
        old_module (str): The module that used to define the names.
        names (Iterable[str]): The names that moved.
        new_module (str): Where they live now.
    """
    moved = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name not in moved:
            raise AttributeError(
                f'module {old_module!r} has no attribute {name!r}')
        warnings.warn(
            f'{old_module}.{name} moved to {new_module}; import it from '
            f'there ({old_module} will stop providing it)',
            DeprecationWarning,
            stacklevel=2)
        return getattr(importlib.import_module(new_module), name)

    return __getattr__
