"""dynconv_mmdet.analysis.benchmark.compiled: the compile limits of the
compiled part (the part itself runs in test_run.py's --gpu-subset run)."""
import pytest
import torch
import torch.nn as nn

from dynconv_mmdet.analysis.benchmark import compiled


def test_compile_limits_raise_and_restore():
    import torch._dynamo
    config = torch._dynamo.config
    names = [name for name in compiled._LIMITS if hasattr(config, name)]
    assert names
    before = {name: getattr(config, name) for name in names}
    with compiled.compile_limits(compiled.COMPILE_GRAPHS):
        for name in names:
            assert getattr(config, name) == max(before[name],
                                                compiled.COMPILE_GRAPHS)
    assert {name: getattr(config, name) for name in names} == before


def test_compiler_error_names_the_module():
    module = nn.Linear(4, 4)
    with pytest.raises(compiled.CompileError, match='mine at \\(1, 3\\)'):
        compiled.compile_for(module, torch.randn(1, 3), torch.device('cpu'),
                             'mine')
