# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""One way to list offending items in an error message.

Every message of the package that lists keys, files or entries shows the
first :data:`MAX_LISTED` of them and says how many more there are, e.g.
``'a', 'b', 'c', 'd', 'e' (and 2 more)``; the count of all items belongs to
the sentence around it.
"""
from typing import Any, Callable, Iterable

#: How many items a message lists before "(and N more)".
MAX_LISTED = 5


def format_listing(items: Iterable[Any],
                   sep: str = ', ',
                   fmt: Callable[[Any], str] = str) -> str:
    """The first :data:`MAX_LISTED` items, then ``(and N more)``.

    Args:
        items (Iterable): What to list, in order.
        sep (str): Separator between items (e.g. ``'\\n    '`` for one item
            per indented line).
        fmt (callable): Text of one item (``str``; ``repr`` to quote names).

    Returns:
        str: ``''`` for no items.
    """
    items = list(items)
    text = sep.join(fmt(item) for item in items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        text += f' (and {len(items) - MAX_LISTED} more)'
    return text
