"""The run (:func:`run_benchmark`): build, check, time, print, part after part.

Order of a run: every module is built, every exactness check runs (and
every compiled module is compiled and compared with its eager self), and
only then is anything timed; a mismatch prints ``EXACTNESS CHECK FAILED``
and ends the run with status 1 (a compiler error ``COMPILE FAILED``).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from contextlib import ExitStack
from typing import Dict, List, Optional, Sequence

import torch

from ..cli import import_custom_modules
from .backbones import BackbonesPart
from .compiled import CompiledPart, CompileError
from .detectors import DetectorsPart
from .exactness import COMPILED_TOL, GRAD_TOL, OUT_TOL, ExactnessError, summary
from .layers import LayersPart
from .part import Part, Run
from .presets import UsageError
from .report import cpu_name
from .timing import MODES

#: The parts of a run, in the order they are timed and printed.
PARTS = ('layers', 'backbones', 'compiled', 'detectors')
#: The parts of ``--gpu-subset``.
GPU_SUBSET_PARTS = ('backbones', 'compiled', 'detectors')


def selected_parts(args: argparse.Namespace) -> List[str]:
    """The parts asked for (``--only``, ``--gpu-subset`` or all), in
    :data:`PARTS` order."""
    asked = args.only or (GPU_SUBSET_PARTS if args.gpu_subset else PARTS)
    return [p for p in PARTS if p in asked]


def make_parts(run: Run, selected: Sequence[str]) -> List[Part]:
    """The parts of a run, in :data:`PARTS` order.

    The backbones part is always there: it checks ``--backbones`` and
    holds the modules the compiled part compiles; its rows are timed only
    when asked for.
    """
    backbones = BackbonesPart(run, 'backbones' in selected, 'compiled'
                              in selected)
    parts: List[Part] = [LayersPart(run)] if 'layers' in selected else []
    parts.append(backbones)
    if 'compiled' in selected:
        parts.append(CompiledPart(run, backbones))
    if 'detectors' in selected:
        parts.append(DetectorsPart(run))
    return parts


def _meta(run: Run, argv: Optional[Sequence[str]], selected: List[str],
          sizes: List[int]) -> Dict:
    args, device = run.args, run.device
    return dict(
        device=str(device),
        device_name=(torch.cuda.get_device_name(device)
                     if device.type == 'cuda' else cpu_name()),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        repeats=args.repeats,
        train_repeats=args.train_repeats,
        quick=args.quick,
        gpu_subset=args.gpu_subset,
        parts=selected,
        backbone_sizes=sizes,
        compile_backend=args.compile_backend
        if 'compiled' in selected else None,
        layouts={
            name: repr(lay)
            for name, lay in args.layouts.items()
        },
        argv=sys.argv[1:] if argv is None else list(argv))


def _print_header(args: argparse.Namespace, meta: Dict) -> None:
    print('# Dynamic convolution benchmark\n')
    print(f'device: {meta["device"]} ({meta["device_name"]}), threads: '
          f'{meta["threads"]}, torch {meta["torch"]}, median of '
          f'{args.train_repeats} (train) / {args.repeats} (infer) '
          f'interleaved runs after 1 warm-up; train = forward + backward at '
          f'batch {MODES["train"]}, infer = forward at batch '
          f'{MODES["infer"]}\n')
    for name, layout in args.layouts.items():
        print(f'{name}: dynamic={layout!r}\n')


def _print_checks(run: Run, checks: List[Dict],
                  compiled_checks: List[Dict]) -> None:
    if checks:
        print(summary(checks, 'ours vs released', OUT_TOL) + '\n')
    else:
        print('exactness (ours vs released): no timed module has dynamic '
              'convs with a released formulation\n')
    if compiled_checks:
        print(
            summary(compiled_checks, 'compiled vs eager', COMPILED_TOL) + '\n')
    if run.no_reference:
        print('no released formulation (released cells "-"): ' +
              '; '.join(dict.fromkeys(run.no_reference)) + '\n')
    for note in run.notes:
        print(f'note: {note}\n')


def log(msg: str) -> None:
    """A progress message on stderr."""
    print(f'[benchmark] {msg}', file=sys.stderr, flush=True)


def run_benchmark(args: argparse.Namespace, argv: Optional[Sequence[str]],
                  stack: ExitStack) -> int:
    """One run of the parts of ``args``; the exit status (0, or 1: an
    exactness check or the compiler failed). Raises
    :class:`~.presets.UsageError` for a bad command line."""
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.custom_imports:
        try:
            import_custom_modules(args.custom_imports)
        except ImportError as err:
            raise UsageError(
                f'--custom-imports: {err}; give importable module names (on '
                'sys.path, e.g. PYTHONPATH=.)') from err
    selected = selected_parts(args)
    state = Run(args, device, log, stack)
    parts = make_parts(state, selected)
    for part in parts:
        part.build()
    for part in parts:
        note = part.empty_note()
        if note:
            state.notes.append(note)
    sizes = next(p.sizes for p in parts if isinstance(p, BackbonesPart))
    meta = _meta(state, argv, selected, sizes)
    _print_header(args, meta)
    state.start = time.perf_counter()
    try:
        checks = [check for part in parts for check in part.check()]
        log(f'exactness check passed: {len(checks)} checks, outputs <= '
            f'{OUT_TOL:g}, gradients <= {GRAD_TOL:g} (relative to the '
            'largest magnitude of each tensor)')
        compiled_checks = [check for part in parts for check in part.compile()]
    except ExactnessError as err:
        print(f'EXACTNESS CHECK FAILED: {err}')
        log(f'EXACTNESS CHECK FAILED: {err}')
        return 1
    except CompileError as err:
        print(f'COMPILE FAILED: {err}')
        log(f'COMPILE FAILED: {err}')
        return 1
    _print_checks(state, checks, compiled_checks)
    results = dict(
        meta=meta,
        checks=checks,
        compiled_checks=compiled_checks,
        notes=state.notes)
    for part in parts:
        if part.timed:
            results[part.name] = rows = part.time()
            for block in part.report(rows):
                print(block + '\n')
    meta['wall_s'] = time.perf_counter() - state.start
    print(f'total wall time: {meta["wall_s"]:.0f} s')
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return 0
