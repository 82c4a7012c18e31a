# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Helpers shared by the annotation and the image checks."""
import numbers
from typing import Any, List

from ...utils.formatting import format_listing


def fmt_list(items: List[Any], use_repr: bool = True) -> str:
    """The first few items, then how many more there are."""
    if use_repr:
        return format_listing(items, fmt=repr)
    return format_listing(items, sep='; ')


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number (not a bool, not NaN)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and value == value)
