"""The exactness check that guards every timing of the benchmark.

``ours`` (the layers' own forward) is compared with ``released`` (the
released formulation, :func:`~dynconv_mmdet.analysis.reference.
released_formulation`) on the modules that are timed, and compiled modules
with their eager selves. Errors are relative to each tensor's largest
magnitude (:func:`relative_error`); any mismatch raises
:class:`ExactnessError`. Each part checks its own modules
(``check`` of :class:`~.part.Part`); :func:`summary` is the line a run
prints for all of them.
"""
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from ..reference import has_reference, released_formulation
from .presets import families, has_dynamic_convs

#: Largest relative error of an output, ours vs released.
OUT_TOL = 1e-5
#: Largest relative error of a gradient, ours vs released.
GRAD_TOL = 1e-4
#: Largest relative error of a compiled output against the eager one.
COMPILED_TOL = 1e-4
#: Square input of the float64 training checks of backbones and detectors:
#: 64x64 keeps the last maps at 2x2, so that the train-mode BatchNorms do
#: not normalise over two values (at 32x32 MobileNetV2 ends at 1x1, where
#: float64 rounding is amplified to 1e-5).
CHECK_SIZE = 64
#: Batch of those checks. The attention BatchNorms of ODConv and
#: KernelWarehouse normalise over the batch's pooled samples; over two
#: samples a channel whose two values nearly agree amplifies rounding by up
#: to ``1 / sqrt(eps)`` per layer, so that even in float64 the two
#: formulations of MobileNetV2 drift apart by 1e-10 to 1e-4 depending on the
#: random input. Over four samples they agree to <= 1e-9. Every batch > 1
#: runs the same code paths (per-sample kernels, batched 1x1 GEMMs, grouped
#: convolutions) as the timed batch of 2.
CHECK_BATCH = 4


class ExactnessError(AssertionError):
    """``ours`` and ``released`` (or compiled and eager) disagree beyond the
    tolerance."""


def relative_error(ours: Tensor, ref: Tensor, floor: float = 0.0) -> float:
    """``max |ours - ref| / max(max |ref|, floor)`` (0 when both are 0)."""
    scale = max(ref.detach().abs().max().item(), floor)
    diff = (ours.detach() - ref.detach()).abs().max().item()
    if scale == 0:
        return 0.0 if diff == 0 else float('inf')
    return diff / scale


def check_tensors(name: str,
                  ours: Sequence[Optional[Tensor]],
                  ref: Sequence[Optional[Tensor]],
                  tol: float,
                  labels: Optional[Sequence[str]] = None,
                  floor: float = 0.0) -> float:
    """Compare tensors pairwise; raise :class:`ExactnessError` on mismatch.

    Args:
        name (str): What is compared, for the message.
        ours, ref: Tensors of equal shapes (``None`` must pair with
            ``None``).
        tol (float): Largest allowed :func:`relative_error`.
        labels (sequence of str, optional): One name per tensor.
        floor (float): Smallest magnitude a tensor is compared relative to;
            a reference whose entries are all smaller is numerically zero
            (see :func:`check_module`).

    Returns:
        float: The worst relative error.
    """
    if len(ours) != len(ref):
        raise ExactnessError(f'{name}: {len(ours)} tensors vs {len(ref)}')
    labels = labels or [str(i) for i in range(len(ours))]
    worst = 0.0
    for label, a, b in zip(labels, ours, ref):
        if a is None or b is None:
            if a is not b:
                raise ExactnessError(f'{name} [{label}]: one side is None')
            continue
        if a.shape != b.shape:
            raise ExactnessError(f'{name} [{label}]: shape {tuple(a.shape)} '
                                 f'vs {tuple(b.shape)}')
        err = relative_error(a, b, floor)
        if not err <= tol:
            raise ExactnessError(
                f'{name} [{label}]: relative error {err:.3g} > {tol:g}')
        worst = max(worst, err)
    return worst


def outputs(out) -> List[Tensor]:
    """The tensors of a module's output (a tensor, or a tuple / list of
    them, as backbones and necks return)."""
    return list(out) if isinstance(out, (tuple, list)) else [out]


def check_record(name: str, mode: str, x: Tensor, out_err: float,
                 grad_err: Optional[float]) -> Dict:
    """One exactness result as it goes into the JSON output."""
    return dict(
        name=name,
        mode=mode,
        dtype=str(x.dtype).replace('torch.', ''),
        shape=list(x.shape),
        output_rel_err=out_err,
        grad_rel_err=grad_err)


def _formulation(module: nn.Module, impl: str):
    return released_formulation(module) if impl == 'released' \
        else nullcontext()


def check_module(name: str,
                 module: nn.Module,
                 x: Tensor,
                 dtype: Optional[torch.dtype] = None) -> Dict:
    """Run ``module`` with both formulations (train mode), compare outputs
    and gradients of the input and every parameter.

    The loss is ``sum_i sum(out_i * g_i)`` with fixed random ``g_i``.
    ``dtype`` runs the check in another precision (the module is restored).
    Gradients that are mathematically zero (e.g. the bias of a BatchNorm
    followed by a 1x1 conv and another train-mode BatchNorm, which removes
    any per-channel shift) hold only rounding noise; each gradient is
    therefore compared relative to at least 1e-8 times the largest gradient
    magnitude of the check (the backbones are checked in float64, where
    rounding noise is ~1e-16 of that).
    Raises :class:`ExactnessError` on mismatch.
    """
    if dtype is not None and dtype != x.dtype:
        original = x.dtype
        try:
            return check_module(name, module.to(dtype), x.to(dtype))
        finally:
            module.to(original)
    module.train()
    results = {}
    grads = None
    for impl in ('released', 'ours'):
        inp = x.detach().clone().requires_grad_()
        module.zero_grad(set_to_none=True)
        with _formulation(module, impl):
            outs = outputs(module(inp))
        if grads is None:
            gen = torch.Generator(device='cpu').manual_seed(1)
            grads = [torch.randn(o.shape, generator=gen).to(o) for o in outs]
        sum((o * g).sum() for o, g in zip(outs, grads)).backward()
        params = [p for _, p in module.named_parameters()]
        results[impl] = ([o.detach() for o in outs],
                         [inp.grad] + [p.grad for p in params])
    labels = ['input'] + [n for n, _ in module.named_parameters()]
    out_err = check_tensors(f'{name} output', results['ours'][0],
                            results['released'][0], OUT_TOL)
    ref_grads = [g for g in results['released'][1] if g is not None]
    floor = 1e-8 * max(g.abs().max().item() for g in ref_grads)
    grad_err = check_tensors(f'{name} gradient', results['ours'][1],
                             results['released'][1], GRAD_TOL, labels, floor)
    module.zero_grad(set_to_none=True)
    return check_record(name, 'train', x, out_err, grad_err)


def check_inference(name: str, module: nn.Module, x: Tensor) -> Dict:
    """Compare the outputs of both formulations in eval mode, no gradients
    (the inference path: batch 1 folds every attention into the kernel).
    Raises :class:`ExactnessError` on mismatch."""
    module.eval()
    outs = {}
    with torch.no_grad():
        for impl in ('released', 'ours'):
            with _formulation(module, impl):
                outs[impl] = outputs(module(x))
    out_err = check_tensors(f'{name} inference output', outs['ours'],
                            outs['released'], OUT_TOL)
    return check_record(name, 'infer', x, out_err, None)


def check_compiled(name: str, compiled: nn.Module, eager: nn.Module,
                   x: Tensor) -> Dict:
    """Compare a compiled module's inference outputs with the eager
    module's (eval mode, no gradients; tolerance :data:`COMPILED_TOL`, as
    the compiler may fuse and reorder floating-point operations).
    Raises :class:`ExactnessError` on mismatch."""
    eager.eval()
    compiled.eval()
    with torch.no_grad():
        ref = outputs(eager(x))
        out = outputs(compiled(x))
    out_err = check_tensors(f'{name} compiled output', out, ref, COMPILED_TOL)
    return check_record(name, 'compiled', x, out_err, None)


def has_released(module: nn.Module) -> bool:
    """Whether ``module`` has dynamic convs with a released formulation
    (then ``released`` is timed and checked)."""
    return has_dynamic_convs(module) and has_reference(module)


def checkable(name: str, module: nn.Module, no_reference: List[str]) -> bool:
    """Whether ``module`` is checked: it has dynamic convs, all with a
    released formulation. A module whose dynamic convs have none is listed
    in ``no_reference`` (``name (families)``)."""
    if not has_dynamic_convs(module):
        return False
    if not has_reference(module):
        no_reference.append(f'{name} ({families(module)})')
        return False
    return True


def summary(checks: List[Dict], label: str, out_tol: float) -> str:
    """The exactness line of a run: modules, checks and the worst
    errors."""
    modules = len({c['name'] for c in checks})
    kinds = dict.fromkeys(
        dict(train='training', infer='inference', compiled='inference')[
            c['mode']] for c in checks)
    worst_out = max(c['output_rel_err'] for c in checks)
    grads = [
        c['grad_rel_err'] for c in checks if c['grad_rel_err'] is not None
    ]
    line = (f'exactness ({label}): PASSED on {modules} modules '
            f'({len(checks)} checks: {" and ".join(kinds)}); worst relative '
            f'error: outputs {worst_out:.1e} (tol {out_tol:g})')
    if grads:
        line += f', gradients {max(grads):.1e} (tol {GRAD_TOL:g})'
    return line
