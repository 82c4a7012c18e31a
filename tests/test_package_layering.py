# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The subpackages of ``dynconv_mmdet`` import each other in one order only.

Every module's imports are read with :mod:`ast` (absolute
``dynconv_mmdet.`` and relative imports, at module level or inside
functions, and ``importlib.import_module('dynconv_mmdet....')`` with a
literal name) and each import of another subpackage must be allowed by
:data:`ALLOWED`; no import circle may exist between subpackages.
"""
import ast
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = 'dynconv_mmdet'
PACKAGE_DIR = osp.join(ROOT, PACKAGE)
#: ``dynconv_mmdet/__init__.py`` itself (``import dynconv_mmdet``).
TOP = '<package>'

#: Subpackage (or top-level module) -> the parts of the package it may
#: import. Lowest layer first.
ALLOWED: Dict[str, Set[str]] = {
    # helpers for everything: imports nothing of ours
    'utils': set(),
    # the supported versions, read by ``import dynconv_mmdet``
    'version': set(),
    # layers and backbones; a backbone's Pretrained loader is registered
    # by checkpoint (models.backbones.pretrained_mixin), not imported
    'models': {'utils'},
    # image loading and data-set checks
    'datasets': {'utils'},
    # checkpoint reading and key maps into our models
    'checkpoint': {'models', 'utils'},
    # complexity, reference forwards and benchmarks of the models
    'analysis': {'models', 'utils'},
    # runner, hooks, start-up checks and the work-directory lock
    'engine': {'checkpoint', 'datasets', 'models', 'utils'},
    # export with mmdeploy (optional, not imported by the package)
    'deployment': {'models', 'utils'},
    # helpers of the test suites: anything
    'testing': {
        TOP, 'analysis', 'checkpoint', 'datasets', 'engine', 'models', 'utils',
        'version'
    },
    # ``import dynconv_mmdet`` registers everything
    TOP: {'checkpoint', 'datasets', 'engine', 'models', 'version'},
}

Import = Tuple[str, int, str]  # (file, line, imported module)


def _modules() -> Iterator[Tuple[str, str]]:
    """``(path, dotted module name)`` of every module of the package."""
    for dirpath, dirnames, filenames in os.walk(PACKAGE_DIR):
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith('.') and d != '__pycache__')
        for filename in sorted(filenames):
            if not filename.endswith('.py'):
                continue
            path = osp.join(dirpath, filename)
            parts = osp.relpath(path, ROOT)[:-len('.py')].split(os.sep)
            if parts[-1] == '__init__':
                parts = parts[:-1]
            yield path, '.'.join(parts)


def _part(module: str) -> Optional[str]:
    """The subpackage of a dotted module of ours; None if not ours."""
    parts = module.split('.')
    if parts[0] != PACKAGE:
        return None
    return parts[1] if len(parts) > 1 else TOP


def _imported(tree: ast.AST, module: str,
              is_package: bool) -> List[Tuple[int, str]]:
    """``(line, dotted name)`` of everything ``module`` imports (names
    imported from a package count as its submodules)."""
    package = module if is_package else module.rpartition('.')[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base +
                                  ([node.module] if node.module else []))
            else:
                target = node.module
            found += [(node.lineno, f'{target}.{alias.name}')
                      for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(
                node.args[0], ast.Constant) and isinstance(
                    node.args[0].value, str):
            func = node.func
            name = getattr(func, 'attr', getattr(func, 'id', None))
            if name == 'import_module':
                found.append((node.lineno, node.args[0].value))
    return found


def _imports_between_parts() -> Dict[Tuple[str, str], List[Import]]:
    """``(importer, imported) -> imports`` between different parts."""
    edges: Dict[Tuple[str, str], List[Import]] = {}
    for path, module in _modules():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
        source = _part(module)
        is_package = path.endswith('__init__.py')
        for line, target in _imported(tree, module, is_package):
            # ``from dynconv_mmdet import models``: the name may be a
            # subpackage (then it is the import) or a name of the top
            parts = target.split('.')
            if len(parts) == 2 and parts[0] == PACKAGE and \
                    parts[1] not in ALLOWED:
                target = PACKAGE
            part = _part(target)
            if part is None or part == source:
                continue
            edges.setdefault((source, part), []).append(
                (osp.relpath(path, ROOT), line, target))
    return edges


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The import circles of ``graph`` (each found once per start)."""
    cycles = []
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    cycles.append(trail + [start])
                elif nxt not in trail and nxt > start:
                    stack.append((nxt, trail + [nxt]))
    return cycles


def test_allowed_order_has_no_circle():
    assert _cycles(ALLOWED) == []


def test_every_part_has_a_place():
    parts = {_part(module) for _, module in _modules()}
    assert parts <= set(ALLOWED), (
        f'place {sorted(parts - set(ALLOWED))} in ALLOWED of this test')


def test_subpackages_import_in_the_allowed_order():
    bad = []
    for (source, target), imports in sorted(_imports_between_parts().items()):
        if target in ALLOWED.get(source, set()):
            continue
        for path, line, name in imports:
            bad.append(f'{path}:{line}: {source} imports {target} ({name})')
    assert not bad, (
        'imports against the layering of dynconv_mmdet (see ALLOWED in '
        'tests/test_package_layering.py):\n' + '\n'.join(bad))


def test_no_import_circle_between_subpackages():
    graph: Dict[str, Set[str]] = {}
    for source, target in _imports_between_parts():
        graph.setdefault(source, set()).add(target)
    assert _cycles(graph) == []


@pytest.mark.parametrize('source, expected', [
    ('from ..models.layers import x', {'dynconv_mmdet.models.layers.x'}),
    ('from . import engine', {'dynconv_mmdet.checkpoint.engine'}),
    ('def f():\n    from dynconv_mmdet.engine import y',
     {'dynconv_mmdet.engine.y'}),
    ('import dynconv_mmdet.utils.formatting',
     {'dynconv_mmdet.utils.formatting'}),
    ("importlib.import_module('dynconv_mmdet.analysis')",
     {'dynconv_mmdet.analysis'}),
])
def test_imports_are_read(source, expected):
    """Relative, absolute, in-function and ``import_module`` imports of the
    module ``dynconv_mmdet.checkpoint.mod`` are all seen."""
    found = _imported(
        ast.parse(source), 'dynconv_mmdet.checkpoint.mod', is_package=False)
    assert {name for _, name in found} == expected
