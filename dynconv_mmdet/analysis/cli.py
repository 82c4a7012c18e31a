"""Command-line helpers shared by the analysis tools."""
from typing import Dict, Iterable

from mmengine.utils import import_modules_from_strings

from .layout_literal import evaluate_layout_literal


def read_layout(literal: str) -> dict:
    """A ``dynamic=`` layout written on the command line.

    Python literals plus ``dict(...)`` and arithmetic, e.g.
    ``"dict(conv_cfg=dict(type='FooConv2d'), stages=(True,) * 4)"``; no
    other name or call is available, and every value stays bounded
    (``dynconv_mmdet.analysis.layout_literal``: ``9**9**9`` is
    refused at once, where ``eval`` would compute it for minutes).

    Raises:
        ValueError: Not such an expression, or not a dict.
    """
    try:
        layout = evaluate_layout_literal(literal)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f'cannot read the layout {literal!r} ({err}); write it as a '
            "Python dict, e.g. \"dict(conv_cfg=dict(type='FooConv2d'), "
            'stages=(True,) * 4)"') from err
    if not isinstance(layout, dict):
        raise ValueError(f'the layout {literal!r} is not a dict')
    return layout


def read_named_layout(text: str) -> Dict[str, dict]:
    """``NAME=DICT`` -> ``{NAME: layout}`` (see :func:`read_layout`)."""
    name, sep, literal = text.partition('=')
    if not sep or not name.isidentifier():
        raise ValueError(
            f'expected NAME=DICT, e.g. "foo=dict(conv_cfg=dict('
            f'type=\'FooConv2d\'), stages=(True,) * 4)", got {text!r}')
    return {name: read_layout(literal)}


def import_custom_modules(modules: Iterable[str]) -> None:
    """Import modules that register layers (as ``custom_imports`` does in a
    config); a module that does not import is an error."""
    modules = list(modules)
    if modules:
        import_modules_from_strings(modules, allow_failed_imports=False)
