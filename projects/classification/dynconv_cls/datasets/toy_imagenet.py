"""Deprecated home of the toy ImageNet generator.

It moved beside its command line, ``projects/classification/tools/
create_toy_imagenet.py`` (module
``projects.classification.tools.create_toy_imagenet``); the name still
imports from here with a ``DeprecationWarning`` that says so.
"""
import importlib
import warnings
from typing import Any

GENERATOR_MODULE = 'projects.classification.tools.create_toy_imagenet'
MOVED_NAMES = ('generate_toy_imagenet', )


def moved_name(module: str, name: str) -> Any:
    """Module ``__getattr__`` of the old homes: forward a moved name with a
    ``DeprecationWarning``, raise ``AttributeError`` for any other."""
    if name not in MOVED_NAMES:
        raise AttributeError(f'module {module!r} has no attribute {name!r}')
    warnings.warn(
        f'{module}.{name} moved to {GENERATOR_MODULE.replace(".", "/")}.py; '
        f'import it with `from {GENERATOR_MODULE} import {name}`. This '
        'alias will be removed.',
        DeprecationWarning,
        stacklevel=3)
    return getattr(importlib.import_module(GENERATOR_MODULE), name)


def __getattr__(name: str) -> Any:
    return moved_name(__name__, name)
