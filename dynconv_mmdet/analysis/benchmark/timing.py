"""Timing and peak memory of benchmark steps, interleaved and repeated.

A :class:`Step` is one pass (a training step or an inference pass) of one
module; :func:`run_interleaved` warms every step of a group up once and then
times them round-robin, every other round in reverse order (ABBA), so that a
drift of the machine's speed within a round favours no step.
"""
import statistics
import time
from contextlib import nullcontext
from typing import Callable, Dict, Hashable, List, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from ..reference import released_formulation
from .exactness import outputs

#: Batch size of every mode.
MODES = {'train': 2, 'infer': 1}


class Step:
    """One timed pass.

    Args:
        fn (callable): The pass.
        module (nn.Module, optional): The module whose dynamic convs run
            the released formulation while the step is timed (``released``).
        released (bool): Swap in the released formulation (outside the
            timed region: the swap itself is not timed).
        prepare (callable, optional): Called before an untimed memory pass
            (e.g. clear the gradients of the previous pass).
    """

    def __init__(self,
                 fn: Callable[[], None],
                 module: Optional[nn.Module] = None,
                 released: bool = False,
                 prepare: Optional[Callable[[], None]] = None) -> None:
        if released and module is None:
            raise ValueError('a released step needs its module')
        self.fn = fn
        self.module = module
        self.released = released
        self._prepare = prepare

    def formulation(self):
        """Context in which the step runs (the released formulation or
        the module as it is)."""
        if self.released:
            return released_formulation(self.module)
        return nullcontext()

    def prepare(self) -> None:
        if self._prepare is not None:
            self._prepare()

    def __call__(self) -> None:
        self.fn()


def set_mode(module: nn.Module, training: bool) -> None:
    """Switch ``module`` to training or eval mode only if it is not there
    yet: ``train()`` / ``eval()`` also drop the layers' inference caches
    (folded and packed attention weights), which a user's evaluation builds
    once, not once per image."""
    if module.training != training:
        module.train(training)


def make_step(module: nn.Module,
              x: Tensor,
              mode: str,
              released: bool = False) -> Step:
    """One forward (+ backward for ``train``) pass of ``module`` on ``x``.

    ``train``: training mode, gradients set to ``None`` before the pass,
    loss = the sum of all outputs. ``infer``: eval mode, under
    ``torch.no_grad()``.
    """
    if mode == 'train':
        inp = x.detach().clone().requires_grad_()

        def prepare() -> None:
            module.zero_grad(set_to_none=True)
            inp.grad = None

        def step() -> None:
            set_mode(module, True)
            prepare()
            outs = outputs(module(inp))
            sum(o.sum() for o in outs).backward()

        return Step(step, module, released, prepare)
    if mode != 'infer':
        raise ValueError(f'unknown mode {mode!r}; choose one of {list(MODES)}')

    def infer() -> None:
        set_mode(module, False)
        with torch.no_grad():
            module(x)

    return Step(infer, module, released)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_once(step: Step, device: torch.device) -> float:
    """Seconds for one run of ``step``."""
    with step.formulation():
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        return time.perf_counter() - start


def peak_memory(step: Step, device: torch.device) -> int:
    """Peak bytes allocated on top of what existed before one ``step``.

    Gradients of the previous step are released before the measurement, so
    the peak includes this step's gradients. CUDA:
    ``torch.cuda.max_memory_allocated`` minus the memory allocated before
    the pass; CPU: the peak of bytes allocated minus freed through PyTorch's
    allocator during the pass, from the ``torch.profiler`` memory events.
    """
    step.prepare()
    with step.formulation():
        if device.type == 'cuda':
            _sync(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            step()
            _sync(device)
            return torch.cuda.max_memory_allocated(device) - base
        from torch.profiler import ProfilerActivity, profile
        with profile(
                activities=[ProfilerActivity.CPU],
                profile_memory=True) as prof:
            step()
    events = [
        e for e in prof.profiler.kineto_results.events()
        if e.name() == '[memory]'
    ]
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for event in events:
        current += event.nbytes()
        peak = max(peak, current)
    return peak


def run_interleaved(steps: Dict[Hashable, Step], repeats: int,
                    device: torch.device, memory: bool) -> Tuple[Dict, Dict]:
    """Warm up every step once, then time them round-robin (every other
    round in reverse order).

    With ``memory``, every step first runs once for the memory measurement
    (:func:`peak_memory`), before the warm-up; neither pass is timed.

    Args:
        steps: ``key -> step``, e.g. ``(variant, impl) -> step``.
        repeats (int): Timed rounds.

    Returns:
        tuple[dict, dict]: ``key -> {'median_ms', 'runs_ms'}`` and
        ``key -> peak MiB`` (empty without ``memory``).
    """
    times: Dict[Hashable, List[float]] = {key: [] for key in steps}
    peaks = {}
    if memory:
        for key, step in steps.items():
            peaks[key] = peak_memory(step, device) / 2**20
    # the untimed warm-up (a profiled pass does not warm up like a plain one:
    # the first timed round after it ran 10-50 % slow on CPU)
    for step in steps.values():
        time_once(step, device)
    order = list(steps.items())
    for i in range(repeats):
        # ABBA order: every other round runs backwards, so that a drift of
        # the machine's speed within a round favours no position
        for key, step in (order if i % 2 == 0 else order[::-1]):
            times[key].append(time_once(step, device))
    medians = {
        key:
        dict(
            median_ms=statistics.median(ts) * 1e3,
            runs_ms=[t * 1e3 for t in ts])
        for key, ts in times.items()
    }
    return medians, peaks
