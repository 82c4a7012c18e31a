"""Command-line helpers shared by the analysis tools."""
import ast
from typing import Dict, Iterable

from mmengine.utils import import_modules_from_strings

_LAYOUT_NAMES = {'dict': dict, 'True': True, 'False': False, 'None': None}


def read_layout(literal: str) -> dict:
    """A ``dynamic=`` layout written on the command line.

    Python literals plus ``dict(...)`` and tuple arithmetic, e.g.
    ``"dict(conv_cfg=dict(type='FooConv2d'), stages=(True,) * 4)"``; no
    other name or call is available.

    Raises:
        ValueError: Not such an expression, or not a dict.
    """
    try:
        code = compile(ast.parse(literal, mode='eval'), '<layout>', 'eval')
        for node in ast.walk(ast.parse(literal, mode='eval')):
            if isinstance(node, ast.Name) and node.id not in _LAYOUT_NAMES:
                raise ValueError(f'name {node.id!r} is not allowed')
            if isinstance(node, ast.Attribute):
                raise ValueError('attributes are not allowed')
        layout = eval(code, {'__builtins__': {}}, dict(_LAYOUT_NAMES))
    except (SyntaxError, ValueError, TypeError) as err:
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
