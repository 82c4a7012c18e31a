# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The adjustments of :mod:`dynconv_mmdet.deployment.compat`: each test
asserts that the condition an adjustment works around still holds (so it
fails the day mmdeploy or torch change, and says which adjustment to
drop), then that the adjustment works."""
import inspect
import subprocess
import sys

import pytest
import torch

from dynconv_mmdet.deployment import compat


def test_torch_onnx_export_defaults_to_dynamo():
    default = inspect.signature(torch.onnx.export).parameters['dynamo'].default
    assert default is True, (
        'torch.onnx.export no longer defaults to the dynamo exporter: '
        'drop compat.torchscript_onnx_export')
    from mmdeploy.apis.onnx import export
    source = inspect.getsource(export)
    assert 'torch.onnx.export(' in source and 'dynamo' not in source, (
        'mmdeploy now chooses the exporter itself: drop '
        'compat.torchscript_onnx_export')


def test_torchscript_export_inside(tmp_path):
    model = torch.nn.Linear(3, 2).eval()
    with compat.torchscript_onnx_export():
        # the TorchScript exporter returns None, the dynamo one a program
        assert torch.onnx.export(model, (torch.randn(1, 3), ),
                                 str(tmp_path / 'a.onnx')) is None
    assert torch.onnx.export.__module__ != compat.__name__


def test_fx_wrapped_functions_are_a_dict():
    wrapped = compat._fx_wrapped_functions()
    assert isinstance(wrapped, dict), (
        "torch.fx's wrapped functions are a list again: mmdeploy's "
        "FunctionRewriter.exit works; drop compat.fx_wrap_imports_done")
    from mmdeploy.core.rewriters.function_rewriter import FunctionRewriter
    assert '.pop(-1)' in inspect.getsource(FunctionRewriter.exit), (
        'mmdeploy no longer pops torch.fx wrapped functions as a list: '
        'drop compat.fx_wrap_imports_done')


_WRAP_INSIDE_CONTEXT = """
import torch.fx
from mmdeploy.core import RewriterContext
try:
    with RewriterContext(cfg={}, backend='onnxruntime'):
        torch.fx.wrap('len')
except Exception as error:
    print('exit failed:', type(error).__name__)
else:
    print('exit succeeded')
"""


def test_fx_wrap_inside_mmdeploy_context_fails():
    """What the adjustment avoids: a function wrapped inside mmdeploy's
    rewriter context breaks its exit (in a process of its own: the failed
    exit leaves mmdeploy's rewrites of torch in place, and every later
    export in that process would recurse through them)."""
    proc = subprocess.run([sys.executable, '-c', _WRAP_INSIDE_CONTEXT],
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert 'exit failed:' in proc.stdout, (
        'mmdeploy\'s rewriter context survives torch.fx.wrap now: drop '
        'compat.fx_wrap_imports_done')


def test_fx_wrap_check_names_the_fix():
    wrapped = compat._fx_wrapped_functions()
    before = dict(wrapped)
    try:
        with pytest.raises(RuntimeError, match='FX_WRAPPING_MODULES'):
            with compat.fx_wrap_imports_done():
                exec('import torch.fx\ntorch.fx.wrap("len")', {})
    finally:
        for key in set(wrapped) - set(before):
            del wrapped[key]


def test_cast_long_is_missing_and_provided():
    from torch.onnx import symbolic_opset9
    assert not hasattr(symbolic_opset9, '_cast_Long'), (
        'torch has symbolic_opset9._cast_Long again: drop '
        'compat.opset9_cast_long')
    from mmdeploy.mmcv.ops import roi_align
    assert '_cast_Long' in inspect.getsource(roi_align)
    with compat.mmdeploy_compat():
        assert symbolic_opset9._cast_Long is compat._cast_long
    assert not hasattr(symbolic_opset9, '_cast_Long')
