"""Dataset helpers (the toy ImageNet generator moved to
``projects/classification/tools/create_toy_imagenet.py``)."""
from typing import Any

from .toy_imagenet import moved_name

__all__: list = []


def __getattr__(name: str) -> Any:
    return moved_name(__name__, name)
