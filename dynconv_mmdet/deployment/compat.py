# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""What mmdeploy 1.3.1 needs to export on the torch of our stack (2.14).

Three adjustments, applied only for the duration of an export by
:func:`mmdeploy_compat` and undone afterwards; each one has a test
(``tests/test_deployment/test_compat.py``) asserting that the condition it
works around still holds, so the day mmdeploy or torch change under it, the
test says which adjustment to drop:

* **TorchScript exporter.** ``torch.onnx.export`` defaults to the dynamo
  exporter (``dynamo=True``) since torch 2.9; mmdeploy's
  ``mmdeploy.apis.onnx.export`` calls it without ``dynamo`` and relies on
  the TorchScript exporter (its symbolic rewriters, ``dynamic_axes``,
  ``torch.onnx.utils._model_to_graph``). :data:`TORCHSCRIPT_EXPORT_KWARGS`
  are added to every call that does not choose.
* **torch.fx wrapped functions.** torch.fx keeps the functions registered
  with ``torch.fx.wrap`` in a dict (``_wrapped_fns_to_patch``); mmdeploy's
  ``FunctionRewriter.exit`` removes the ones added during an export with
  ``.pop(-1)``, a list operation that fails on that dict. A module imported
  for the first time inside the export (torchvision's and mmcv's ops, which
  mmdet imports lazily) would add one: they are imported before it
  (:data:`FX_WRAPPING_MODULES`, with mmdeploy's mmdet rewriters, which
  wrap two of their own), and :func:`mmdeploy_compat` checks that the
  export added none.
* **``symbolic_opset9._cast_Long``.** Removed from torch; mmdeploy's
  ``RoIAlign`` symbolic for ONNX Runtime imports it (every opset). An
  equivalent (``Cast`` to int64) is put there for the export.
"""
import contextlib
import functools
import importlib
from typing import Iterator, Tuple

import torch

#: Keyword arguments added to ``torch.onnx.export`` calls that do not pass
#: ``dynamo`` themselves.
TORCHSCRIPT_EXPORT_KWARGS = dict(dynamo=False)

#: Modules that register functions with ``torch.fx.wrap`` when first
#: imported and may otherwise be imported during an export.
FX_WRAPPING_MODULES: Tuple[str, ...] = ('torchvision.ops', 'mmcv.ops',
                                        'mmdeploy.codebase.mmdet.models')


def _fx_wrapped_functions():
    from torch.fx import _symbolic_trace
    return _symbolic_trace._wrapped_fns_to_patch


def _cast_long(g, input, non_blocking):  # noqa: A002 (torch's signature)
    """``symbolic_opset9._cast_Long`` as torch < 2.6 had it."""
    return g.op('Cast', input, to_i=torch.onnx.TensorProtoDataType.INT64)


@contextlib.contextmanager
def torchscript_onnx_export() -> Iterator[None]:
    """Within: ``torch.onnx.export`` uses the TorchScript exporter unless
    the caller passes ``dynamo``."""
    original = torch.onnx.export

    @functools.wraps(original)
    def export(*args, **kwargs):
        for key, value in TORCHSCRIPT_EXPORT_KWARGS.items():
            kwargs.setdefault(key, value)
        return original(*args, **kwargs)

    torch.onnx.export = export
    try:
        yield
    finally:
        torch.onnx.export = original


@contextlib.contextmanager
def opset9_cast_long() -> Iterator[None]:
    """Within: ``torch.onnx.symbolic_opset9._cast_Long`` exists."""
    from torch.onnx import symbolic_opset9
    if hasattr(symbolic_opset9, '_cast_Long'):
        yield
        return
    symbolic_opset9._cast_Long = _cast_long
    try:
        yield
    finally:
        del symbolic_opset9._cast_Long


@contextlib.contextmanager
def fx_wrap_imports_done() -> Iterator[None]:
    """Import :data:`FX_WRAPPING_MODULES` first; raise if the export still
    registered a ``torch.fx.wrap`` function (mmdeploy could not remove it
    and fails on exit with an unclear error)."""
    for name in FX_WRAPPING_MODULES:
        importlib.import_module(name)
    before = len(_fx_wrapped_functions())
    yield
    added = len(_fx_wrapped_functions()) - before
    if added:
        raise RuntimeError(
            f'{added} torch.fx.wrap function(s) were registered during the '
            'export; mmdeploy 1.3.1 cannot remove them from torch.fx\'s '
            'dict: import the module that registers them before exporting '
            '(add it to dynconv_mmdet.deployment.compat.FX_WRAPPING_MODULES)')


@contextlib.contextmanager
def mmdeploy_compat() -> Iterator[None]:
    """All the adjustments of this module, for one mmdeploy export."""
    with fx_wrap_imports_done(), opset9_cast_long(), \
            torchscript_onnx_export():
        yield
