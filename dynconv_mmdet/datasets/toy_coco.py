# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Deprecated home of the toy COCO set.

The generator moved out of the installed package, beside the command line
that uses it: ``tools/misc/generate_toy_coco.py`` (module
``tools.misc.generate_toy_coco`` from the repository root). The toy config
reads the set with mmdet's ``CocoDataset`` and
``metainfo=dict(classes=..., palette=...)``. :class:`ToyCocoDataset` stays
registered as a deprecated alias so that existing configs still build, and
the names that moved still import from here, with a
``DeprecationWarning`` that names their new place.
"""
import importlib
import importlib.util
import os.path as osp
import warnings
from types import ModuleType
from typing import Any

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

#: Where the generator lives now (a module of the repository's tools).
GENERATOR_MODULE = 'tools.misc.generate_toy_coco'
GENERATOR_FILE = 'tools/misc/generate_toy_coco.py'
#: The names that moved from ``dynconv_mmdet.datasets(.toy_coco)``.
MOVED_NAMES = ('CLASSES', 'PALETTE', 'area_bucket', 'generate_toy_coco',
               'is_toy_coco_complete', 'polygon_area', 'read_toy_coco_meta')


def _load_generator() -> ModuleType:
    """Import the generator: as a module when the repository root is on
    ``sys.path``, else from the repository checkout this package lives in or
    from the copy installed under ``dynconv_mmdet/.mim/``."""
    try:
        return importlib.import_module(GENERATOR_MODULE)
    except ImportError:
        pass
    package_dir = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for root in (osp.dirname(package_dir), osp.join(package_dir, '.mim')):
        path = osp.join(root, GENERATOR_FILE)
        if osp.isfile(path):
            spec = importlib.util.spec_from_file_location(
                '_dynconv_mmdet_toy_coco_generator', path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise ImportError(
        f'the toy COCO generator moved to {GENERATOR_FILE} in the '
        'dynconv-mmdet repository and was found neither as the module '
        f'{GENERATOR_MODULE} nor beside this package; run from the '
        'repository root and import it with '
        f'`from {GENERATOR_MODULE} import generate_toy_coco`.')


def moved_name(module: str, name: str) -> Any:
    """Module ``__getattr__`` of the old homes: forward a moved name with a
    ``DeprecationWarning``, raise ``AttributeError`` for any other."""
    if name not in MOVED_NAMES:
        raise AttributeError(f'module {module!r} has no attribute {name!r}')
    warnings.warn(
        f'{module}.{name} moved out of the installed package to '
        f'{GENERATOR_FILE}; import it with `from {GENERATOR_MODULE} import '
        f'{name}` (repository root on sys.path). This alias will be removed.',
        DeprecationWarning,
        stacklevel=3)
    return getattr(_load_generator(), name)


def __getattr__(name: str) -> Any:
    return moved_name(__name__, name)


@DATASETS.register_module()
class ToyCocoDataset(CocoDataset):
    """Deprecated alias of mmdet's ``CocoDataset`` with the toy set's
    classes and palette.

    Use ``dict(type='CocoDataset', metainfo=dict(classes=..., palette=...))``
    as ``configs/toy/odconv_faster_rcnn_r50_fpn_toy.py`` does; the class
    names and colours are ``CLASSES`` / ``PALETTE`` of
    ``tools/misc/generate_toy_coco.py``.
    """

    METAINFO = {
        'classes': ('circle', 'square', 'triangle', 'star'),
        'palette': [(210, 40, 40), (40, 170, 60), (40, 70, 210),
                    (235, 205, 35)]
    }

    def __init__(self, *args, **kwargs) -> None:
        warnings.warn(
            "the dataset type 'ToyCocoDataset' is deprecated: use "
            "type='CocoDataset' with metainfo=dict(classes=..., palette=...) "
            '(see configs/toy/odconv_faster_rcnn_r50_fpn_toy.py).',
            FutureWarning,
            stacklevel=2)
        super().__init__(*args, **kwargs)
