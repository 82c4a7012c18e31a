"""The ``compiled`` part: ``torch.compile`` of the static and the dynamic
backbones (the modules of the ``backbones`` part), inference at batch 1.

Every module is compiled on its own (``dynamic=False``: one graph per input
size). Modules of one class share their ``forward`` code, and dynamo keeps a
limited number of graphs per code object before it falls back to eager
silently; :func:`compile_limits` raises that limit for the run, so that
every compiled row runs its own graph. Every compiled module is compared
with its eager self (:func:`~.exactness.check_compiled`) before anything is
timed.
"""
import time
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

import torch
import torch.nn as nn
from torch import Tensor

from .backbones import BackbonesPart
from .exactness import check_compiled
from .part import Part, Run
from .report import format_compiled_table
from .timing import MODES, make_step, run_interleaved

#: Graphs dynamo may keep per code object in the compiled part: every module
#: of one class (and every block, should a graph break split it) shares its
#: code, once per size.
COMPILE_GRAPHS = 4096


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


class CompiledPart(Part):
    """Compiled backbones: static compiled and every variant compiled.

    Args:
        run (Run): The run.
        backbones (BackbonesPart): The part whose modules are compiled (at
            its plans' ``compiled_sizes``).
    """
    name = 'compiled'

    def __init__(self, run: Run, backbones: BackbonesPart) -> None:
        super().__init__(run)
        self.backbones = backbones
        self.modules: Dict = {}
        self.seconds: Dict = {}
        self.note: Optional[str] = None

    def empty_note(self) -> Optional[str]:
        if not any(p.compiled_sizes for p in self.backbones.plans):
            return ('no compiled rows: none of the chosen backbones has '
                    'compiled sizes (give --backbone-size)')
        return None

    def compile(self) -> List[Dict]:
        """Compile every module for each of its sizes (with the limit of
        :data:`COMPILE_GRAPHS` until the end of the run) and compare its
        outputs with the eager module's; :attr:`modules`: ``(backbone,
        variant) -> compiled module``, :attr:`seconds`: ``(backbone,
        variant, size) -> compile seconds``."""
        self.run.stack.enter_context(compile_limits(COMPILE_GRAPHS))
        checks = []
        device, backend = self.run.device, self.run.args.compile_backend
        for plan in self.backbones.plans:
            for variant, module in plan.modules.items():
                if not plan.compiled_sizes:
                    continue
                name = f'{plan.spec.name} {variant}'
                module.eval()
                fast = compile_module(module, backend)
                self.modules[(plan.spec.name, variant)] = fast
                for size in plan.compiled_sizes:
                    x = torch.randn(
                        MODES['infer'], 3, size, size, device=device)
                    key = (plan.spec.name, variant, size)
                    self.seconds[key] = compile_for(fast, x, device, name)
                    checks.append(check_compiled(name, fast, module, x))
                    self.run.log(f'compiled {name} at {size}x{size}: '
                                 f'{self.seconds[key]:.1f} s')
        return checks

    def time(self) -> List[Dict]:
        """Inference at batch 1, round-robin within one backbone and size;
        a graph compiled while timing (a failed guard) is noted."""
        graphs = graphs_compiled()
        rows = []
        repeats, device = self.run.args.repeats, self.run.device
        for plan in self.backbones.plans:
            name = plan.spec.name
            for size in plan.compiled_sizes:
                x = torch.randn(MODES['infer'], 3, size, size, device=device)
                steps = {
                    variant: make_step(self.modules[(name, variant)], x,
                                       'infer')
                    for variant in plan.modules
                }
                res, _ = run_interleaved(steps, repeats, device, False)
                for variant in plan.variants:
                    rows.append(
                        dict(
                            backbone=name,
                            preset=variant,
                            size=size,
                            mode='infer',
                            batch=MODES['infer'],
                            repeats=repeats,
                            times=dict(
                                static=res['static'], ours=res[variant]),
                            compile_s=dict(
                                static=self.seconds[(name, 'static', size)],
                                ours=self.seconds[(name, variant, size)])))
                    self.run.log(f'compiled {name} {size} {variant}: static '
                                 f'{res["static"]["median_ms"]:.0f} ms, ours '
                                 f'{res[variant]["median_ms"]:.0f} ms')
        recompiled = graphs_compiled() - graphs
        if recompiled:
            self.note = (f'{recompiled} graphs were compiled while the '
                         'compiled rows were timed (a guard failed): those '
                         'rows include compilation')
            self.run.notes.append(self.note)
        return rows

    def report(self, rows: List[Dict]) -> List[str]:
        blocks = [
            '## Compiled backbones (torch.compile, backend '
            f'{self.run.args.compile_backend}), infer (batch '
            f'{MODES["infer"]}), ms',
            format_compiled_table(rows)
        ]
        if self.note:
            blocks.append(f'note: {self.note}')
        return blocks
