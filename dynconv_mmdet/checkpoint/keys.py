# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Key helpers shared by every layout: prefixes and unknown keys."""
from typing import Dict, Iterable

from torch import Tensor

from ..utils.formatting import format_listing

StateDict = Dict[str, Tensor]


def strip_prefix(state_dict: StateDict,
                 prefix: str,
                 only: bool = False) -> StateDict:
    """Remove ``prefix`` (e.g. ``'module.'``) from the keys that have it.

    Args:
        state_dict (dict): Not modified; tensors are not copied.
        prefix (str): The prefix, with its dot.
        only (bool): Keep only the keys that have ``prefix`` (e.g. the
            ``backbone.`` part of a detector); others are kept unchanged
            otherwise.

    Returns:
        dict: The renamed entries, in their order.
    """
    n = len(prefix)
    return {
        (k[n:] if k.startswith(prefix) else k): v
        for k, v in state_dict.items() if not only or k.startswith(prefix)
    }


def raise_unknown_keys(unknown: Iterable[str], what: str) -> None:
    """Raise ``KeyError`` listing ``unknown`` keys, if there are any.

    Args:
        unknown (Iterable[str]): Keys that ``what`` does not have.
        what (str): The layout, e.g. ``'an official resnet classification
            model'``.
    """
    unknown = list(unknown)
    if unknown:
        raise KeyError(f'{len(unknown)} keys are not part of {what}: '
                       f'{format_listing(unknown)}')
