"""``torch.compile`` for the compiled rows: compile, time the compilation,
keep every compiled graph.

Every module is compiled on its own (``dynamic=False``: one graph per input
size). Modules of one class share their ``forward`` code, and dynamo keeps a
limited number of graphs per code object before it falls back to eager
silently; :func:`compile_limits` raises that limit for the run, so that
every compiled row runs its own graph.
"""
import time
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn
from torch import Tensor


class CompileError(RuntimeError):
    """``torch.compile`` failed for a module."""


_LIMITS = ('recompile_limit', 'cache_size_limit',
           'accumulated_recompile_limit', 'accumulated_cache_size_limit')


@contextmanager
def compile_limits(graphs: int) -> Iterator[None]:
    """Let dynamo keep at least ``graphs`` graphs per code object."""
    import torch._dynamo
    config = torch._dynamo.config
    names = [name for name in _LIMITS if hasattr(config, name)]
    with config.patch(
        {name: max(getattr(config, name), graphs)
         for name in names}):
        yield


def graphs_compiled() -> int:
    """Graphs dynamo has compiled in this process so far (a count that
    grows during timing means a guard failed and a module recompiled)."""
    from torch._dynamo.utils import counters
    return counters['stats']['unique_graphs']


def compile_module(module: nn.Module, backend: str) -> nn.Module:
    """``torch.compile(module)`` for inference at fixed input sizes."""
    return torch.compile(module, backend=backend, dynamic=False)


def compile_for(compiled: nn.Module, x: Tensor, device: torch.device,
                name: str) -> float:
    """Compile ``compiled`` for input ``x`` (inference): the seconds of its
    first call, compilation included.

    Raises:
        CompileError: The compiler failed; says which module.
    """
    compiled.eval()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    try:
        with torch.no_grad():
            compiled(x)
    except Exception as err:  # the compiler's errors have many types
        raise CompileError(
            f'torch.compile failed for {name} at {tuple(x.shape)}: '
            f'{type(err).__name__}: {err}. Leave the compiled rows out '
            '(--only without compiled) or try another --compile-backend.'
        ) from err
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - start
