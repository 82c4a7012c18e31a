"""Speed and memory of the dynamic convolutions against static convs.

Three implementations are timed in one run, interleaved and repeated
(median of ``--train-repeats`` runs of every training step and ``--repeats``
runs of every inference pass, after one warm-up run each):

* ``static``: ``nn.Conv2d`` / the static backbone (preset ``'static'``), the
  physical floor;
* ``released``: the same dynamic modules computing the released
  formulation (:func:`~dynconv_mmdet.models.layers.functional.
  batch_folded_conv2d`: batch folded into the groups, attentions multiplied
  into the feature maps, the ``[B, K, C_out, C_in, k, k]`` kernel product),
  selected with the benchmark-only switch
  :func:`~dynconv_mmdet.models.layers.functional.formulation`;
* ``ours``: :func:`~dynconv_mmdet.models.layers.functional.dynamic_conv2d`.

Before any timing, ``ours`` is checked against ``released`` on every timed
module, for training (outputs to 1e-5 and gradients of the input and of every
parameter to 1e-4, relative to each tensor's largest magnitude) and for
inference (outputs to 1e-5): layers at their timed shapes, backbones at the
timed size for inference and in float64 at 64x64 for training (see
:func:`check_all`). Any mismatch aborts the run (exit status 1).

Modes: ``train`` is one forward + backward pass (loss: the sum of all outputs;
gradients set to ``None`` before each pass; batch 2, module in training
mode), ``infer`` one forward pass under ``torch.no_grad()`` (batch 1, eval
mode). Layers run at the shapes a ResNet-50 meets under a 1333x800 image
(padded to 1344x800), backbones (ResNet-50, MobileNetV2 1.0, mmdet defaults)
at 800x800.

Peak memory is measured on an extra pass before the warm-up (never
timed): on CUDA ``torch.cuda.max_memory_allocated`` minus the memory
allocated before the pass; on CPU the peak of the bytes allocated minus freed
through PyTorch's CPU allocator during the pass, summed from the allocation
events that ``torch.profiler`` records (``profile_memory=True``). Both count
tensor memory live on top of what existed before the pass (model, input),
not the process RSS; allocations that bypass PyTorch's allocator (e.g.
oneDNN scratch buffers) are not seen on CPU.

Output: Markdown tables on stdout (format documented in docs/benchmark.md),
optionally everything as JSON (``--json``).

Example::

    python tools/analysis_tools/benchmark_dynconv.py \\
        --json work_dirs/benchmark.json
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

import dynconv_mmdet  # noqa: F401  (registers the layers and backbones)
from dynconv_mmdet.models.layers.functional import formulation

IMPLS = ('static', 'released', 'ours')
LAYER_TYPES = {
    'condconv8x': dict(type='CondConv2d', num_experts=8),
    'dyconv4x': dict(type='DyConv2d', kernel_num=4),
    'odconv1x': dict(type='ODConv2d', kernel_num=1),
    'odconv4x': dict(type='ODConv2d', kernel_num=4),
}
# ResNet-50 convs under a 1333x800 image padded to 1344x800:
# (name, C_in, C_out, k, stride, H, W) with H, W the input size.
RESNET50_LAYERS = [
    ('layer1 1x1', 256, 64, 1, 1, 200, 336),
    ('layer1 3x3', 64, 64, 3, 1, 200, 336),
    ('layer1 1x1', 64, 256, 1, 1, 200, 336),
    ('layer2 3x3', 128, 128, 3, 1, 100, 168),
    ('layer2 1x1', 128, 512, 1, 1, 100, 168),
    ('layer3 3x3', 256, 256, 3, 1, 50, 84),
    ('layer3 1x1', 1024, 256, 1, 1, 50, 84),
    ('layer4 3x3', 512, 512, 3, 1, 25, 42),
    ('layer4 1x1', 512, 2048, 1, 1, 25, 42),
]
QUICK_LAYERS = [
    ('layer1 3x3', 16, 16, 3, 1, 12, 16),
    ('layer1 1x1', 16, 32, 1, 1, 12, 16),
]
BACKBONES = {
    'ResNet-50': dict(type='DynamicResNet', depth=50),
    'MobileNetV2 1.0': dict(type='DynamicMobileNetV2', widen_factor=1.0),
}
QUICK_BACKBONES = {
    'ResNet-18': dict(type='DynamicResNet', depth=18),
    'MobileNetV2 0.5': dict(type='DynamicMobileNetV2', widen_factor=0.5),
}
PRESETS = ('condconv8x', 'dyconv4x', 'odconv1x', 'odconv4x')
MODES = {'train': 2, 'infer': 1}  # mode -> batch size
OUT_TOL = 1e-5
GRAD_TOL = 1e-4


class ExactnessError(AssertionError):
    """``ours`` and ``released`` disagree beyond the tolerance."""


# --------------------------------------------------------------------------
# Exactness
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


def _outputs(out) -> List[Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _check_record(name: str, mode: str, x: Tensor, out_err: float,
                  grad_err: Optional[float]) -> Dict:
    """One exactness result as it goes into the JSON output."""
    return dict(
        name=name,
        mode=mode,
        dtype=str(x.dtype).replace('torch.', ''),
        output_rel_err=out_err,
        grad_rel_err=grad_err)


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
        with formulation(impl):
            outs = _outputs(module(inp))
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
    return _check_record(name, 'train', x, out_err, grad_err)


def check_inference(name: str, module: nn.Module, x: Tensor) -> Dict:
    """Compare the outputs of both formulations in eval mode, no gradients
    (the inference path: batch 1 folds every attention into the kernel).
    Raises :class:`ExactnessError` on mismatch."""
    module.eval()
    outs = {}
    with torch.no_grad():
        for impl in ('released', 'ours'):
            with formulation(impl):
                outs[impl] = _outputs(module(x))
    out_err = check_tensors(f'{name} inference output', outs['ours'],
                            outs['released'], OUT_TOL)
    return _check_record(name, 'infer', x, out_err, None)


# --------------------------------------------------------------------------
# Timing and memory
def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def make_step(module: nn.Module, x: Tensor, mode: str) -> Callable[[], None]:
    """One forward (+ backward for ``train``) pass as a closure."""
    if mode == 'train':
        inp = x.detach().clone().requires_grad_()

        def prepare() -> None:
            module.zero_grad(set_to_none=True)
            inp.grad = None

        def step() -> None:
            module.train()
            prepare()
            outs = _outputs(module(inp))
            sum(o.sum() for o in outs).backward()

        step.prepare = prepare
    else:

        def step() -> None:
            module.eval()
            with torch.no_grad():
                module(x)

    return step


def time_once(step: Callable[[], None], impl: str,
              device: torch.device) -> float:
    """Seconds for one ``step`` with formulation ``impl``."""
    with formulation('ours' if impl == 'static' else impl):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        return time.perf_counter() - start


def peak_memory(step: Callable[[], None], impl: str,
                device: torch.device) -> int:
    """Peak bytes allocated on top of what existed before one ``step``.

    Gradients of the previous step are released before the measurement, so
    the peak includes this step's gradients.
    """
    if hasattr(step, 'prepare'):
        step.prepare()
    with formulation('ours' if impl == 'static' else impl):
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


def run_interleaved(steps: Dict[Tuple[str, str], Callable[[],
                                                          None]], repeats: int,
                    device: torch.device, memory: bool) -> Tuple[Dict, Dict]:
    """Warm up every step once, then time them round-robin (every other
    round in reverse order).

    With ``memory``, every step first runs once for the memory measurement
    (:func:`peak_memory`), before the warm-up; neither pass is timed.

    Args:
        steps: ``(variant, impl) -> step``; ``impl`` (one of
            :data:`IMPLS`) selects the formulation the step runs with.

    Returns:
        tuple[dict, dict]: ``(variant, impl) -> {'median_ms', 'runs_ms'}``
        and ``(variant, impl) -> peak MiB`` (empty without ``memory``).
    """
    times: Dict[Tuple[str, str], List[float]] = {key: [] for key in steps}
    peaks = {}
    for (variant, impl), step in steps.items():
        if memory:
            peaks[(variant, impl)] = peak_memory(step, impl, device) / 2**20
    # the untimed warm-up (a profiled pass does not warm up like a plain one:
    # the first timed round after it ran 10-50 % slow on CPU)
    for (variant, impl), step in steps.items():
        time_once(step, impl, device)
    order = list(steps.items())
    for i in range(repeats):
        # ABBA order: every other round runs backwards, so that a drift of
        # the machine's speed within a round favours no position
        for (variant, impl), step in (order if i % 2 == 0 else order[::-1]):
            times[(variant, impl)].append(time_once(step, impl, device))
    medians = {
        key:
        dict(
            median_ms=statistics.median(ts) * 1e3,
            runs_ms=[t * 1e3 for t in ts])
        for key, ts in times.items()
    }
    return medians, peaks


def _group_steps(static: nn.Module, dynamic: Dict[str, nn.Module], x: Tensor,
                 mode: str) -> Dict[Tuple[str, str], Callable[[], None]]:
    """The static module once, then released and ours per dynamic kind."""
    steps = {('static', 'static'): make_step(static, x, mode)}
    for kind, module in dynamic.items():
        for impl in ('released', 'ours'):
            steps[(kind, impl)] = make_step(module, x, mode)
    return steps


def _rows_from_group(res, peaks, kinds: Sequence[str], **fields) -> List[Dict]:
    rows = []
    for kind in kinds:
        keys = dict(
            static=('static', 'static'),
            released=(kind, 'released'),
            ours=(kind, 'ours'))
        row = dict(
            fields, kind=kind, times={
                i: res[k]
                for i, k in keys.items()
            })
        if peaks:
            row['peak_mib'] = {i: peaks[k] for i, k in keys.items()}
        rows.append(row)
    return rows


# --------------------------------------------------------------------------
# Benchmarks
def _conv_cfg(cfg: dict, cin: int, cout: int, k: int, stride: int) -> dict:
    return dict(
        cfg,
        in_channels=cin,
        out_channels=cout,
        kernel_size=k,
        stride=stride,
        padding=k // 2,
        bias=False)


def build_layer(cin: int, cout: int, k: int, stride: int, kind: str,
                device: torch.device) -> nn.Module:
    """A dynamic layer of ``kind`` (see :data:`LAYER_TYPES`)."""
    return MODELS.build(_conv_cfg(LAYER_TYPES[kind], cin, cout, k,
                                  stride)).to(device)


def build_backbone(cfg: dict, preset: str, device: torch.device) -> nn.Module:
    """A backbone with its constructor initialisation (PyTorch defaults for
    static convs, the released init for dynamic convs)."""
    return MODELS.build(dict(cfg, preset=preset, _scope_='mmdet')).to(device)


def build_layers(layers, device: torch.device) -> List[Dict[str, nn.Module]]:
    """For every layer shape: ``{'static': nn.Conv2d, kind: dynamic layer}``
    (the modules that are checked and timed)."""
    built = []
    for (_, cin, cout, k, stride, _, _) in layers:
        modules = {
            'static':
            nn.Conv2d(cin, cout, k, stride, k // 2, bias=False).to(device)
        }
        for kind in LAYER_TYPES:
            modules[kind] = build_layer(cin, cout, k, stride, kind, device)
        built.append(modules)
    return built


def check_all(layers, layer_modules: List[Dict[str, nn.Module]],
              backbones: Dict[str, Dict[str, nn.Module]], check_size: int,
              size: int, device: torch.device, log) -> List[Dict]:
    """Exactness of ``ours`` vs ``released`` for every timed module, on the
    code paths that are timed.

    Single layers are checked at their timed shapes in float32: a training
    pass at batch 2 (outputs and gradients) and an inference pass at batch 1
    (outputs). Whole backbones are checked in training mode in float64
    (``check_size`` x ``check_size``, batch 2): through 50 layers and the
    train-mode BatchNorms (the attention BN of ODConv normalises over two
    pooled samples) float32 rounding alone is amplified beyond 1e-4 for some
    gradients, while in float64 both formulations agree to ~1e-13 and any
    algebraic difference stands out; their inference pass is checked at the
    timed size (``size`` x ``size``, batch 1) in float32.
    """
    checks = []
    for spec, modules in zip(layers, layer_modules):
        lname, cin, cout, _, _, h, w = spec
        for kind in LAYER_TYPES:
            name = f'{kind} {lname} {cin}->{cout} {h}x{w}'
            x = torch.randn(MODES['train'], cin, h, w, device=device)
            checks.append(check_module(name, modules[kind], x))
            x = torch.randn(MODES['infer'], cin, h, w, device=device)
            checks.append(check_inference(name, modules[kind], x))
    for name, models in backbones.items():
        for preset in PRESETS:
            x = torch.randn(
                MODES['train'], 3, check_size, check_size, device=device)
            checks.append(
                check_module(f'{name} {preset}', models[preset], x,
                             torch.float64))
            x = torch.randn(MODES['infer'], 3, size, size, device=device)
            checks.append(
                check_inference(f'{name} {preset}', models[preset], x))
    log(f'exactness check passed: {len(checks)} checks, outputs <= '
        f'{OUT_TOL:g}, gradients <= {GRAD_TOL:g} (relative to the largest '
        'magnitude of each tensor)')
    return checks


def bench_layers(layers, layer_modules: List[Dict[str, nn.Module]],
                 repeats: Dict[str, int], device: torch.device,
                 memory: bool) -> List[Dict]:
    """Time every layer shape: static, then every kind released / ours,
    round-robin within one shape and mode (``repeats`` per mode)."""
    rows = []
    for (lname, cin, cout, k, stride, h,
         w), modules in zip(layers, layer_modules):
        dynamic = {kind: modules[kind] for kind in LAYER_TYPES}
        for mode, batch in MODES.items():
            x = torch.randn(batch, cin, h, w, device=device)
            steps = _group_steps(modules['static'], dynamic, x, mode)
            res, peaks = run_interleaved(steps, repeats[mode], device, memory)
            rows += _rows_from_group(
                res,
                peaks,
                list(dynamic),
                layer=lname,
                shape=f'{cin}->{cout} k{k} s{stride} {h}x{w}',
                mode=mode,
                batch=batch)
    return rows


def bench_backbones(backbones: Dict[str, Dict[str, nn.Module]], size: int,
                    repeats: Dict[str, int], device: torch.device,
                    memory: bool, log) -> List[Dict]:
    """Time every backbone: static, then every preset released / ours,
    round-robin within one backbone and mode (``repeats`` per mode)."""
    rows = []
    for name, models in backbones.items():
        dynamic = {preset: models[preset] for preset in PRESETS}
        for mode, batch in MODES.items():
            x = torch.randn(batch, 3, size, size, device=device)
            steps = _group_steps(models['static'], dynamic, x, mode)
            res, peaks = run_interleaved(steps, repeats[mode], device, memory)
            group = _rows_from_group(
                res,
                peaks,
                PRESETS,
                backbone=name,
                mode=mode,
                batch=batch,
                size=size,
                repeats=repeats[mode])
            for row in group:
                row['preset'] = row.pop('kind')
                log(f'{name} {row["preset"]} {mode}: ' + ', '.join(
                    f'{impl} {row["times"][impl]["median_ms"]:.0f} ms'
                    for impl in IMPLS))
            rows += group
    return rows


# --------------------------------------------------------------------------
# Report
def _ratios(times: Dict[str, Dict]) -> Tuple[float, float, float]:
    s, r, o = (times[i]['median_ms'] for i in IMPLS)
    return o / s, o / r, r / s


def format_layer_table(rows: List[Dict], mode: str) -> str:
    lines = [
        '| layer | shape | type | static ms | released ms | ours ms | '
        'ours/static | ours/released | released/static |',
        '|---|---|---|---:|---:|---:|---:|---:|---:|'
    ]
    for row in rows:
        if row['mode'] != mode:
            continue
        t = row['times']
        os_, or_, rs = _ratios(t)
        lines.append(f'| {row["layer"]} | {row["shape"]} | {row["kind"]} | '
                     f'{t["static"]["median_ms"]:.1f} | '
                     f'{t["released"]["median_ms"]:.1f} | '
                     f'{t["ours"]["median_ms"]:.1f} | {os_:.2f} | '
                     f'{or_:.2f} | {rs:.2f} |')
    return '\n'.join(lines)


def format_backbone_table(rows: List[Dict]) -> str:
    lines = [
        '| backbone | preset | mode (batch) | static ms | released ms | '
        'ours ms | ours/static | ours/released | released/static | '
        'peak MiB static / released / ours |',
        '|---|---|---|---:|---:|---:|---:|---:|---:|---:|'
    ]
    for row in rows:
        t = row['times']
        os_, or_, rs = _ratios(t)
        mem = row.get('peak_mib')
        mem_s = ' / '.join(f'{mem[i]:.0f}' for i in IMPLS) if mem else '-'
        lines.append(f'| {row["backbone"]} | {row["preset"]} | '
                     f'{row["mode"]} ({row["batch"]}) | '
                     f'{t["static"]["median_ms"]:.0f} | '
                     f'{t["released"]["median_ms"]:.0f} | '
                     f'{t["ours"]["median_ms"]:.0f} | {os_:.2f} | '
                     f'{or_:.2f} | {rs:.2f} | {mem_s} |')
    return '\n'.join(lines)


def cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    parser.add_argument(
        '--repeats',
        type=int,
        default=7,
        help='timed runs (median) of every inference pass')
    parser.add_argument(
        '--train-repeats',
        type=int,
        default=3,
        help='timed runs (median) of every training step')
    parser.add_argument(
        '--quick', action='store_true', help='tiny sizes (for tests)')
    parser.add_argument(
        '--only', choices=['layers', 'backbones'], help='one part only')
    parser.add_argument(
        '--backbone-size', type=int, help='square input (default 800)')
    parser.add_argument(
        '--no-memory', action='store_true', help='skip the memory pass')
    parser.add_argument('--threads', type=int, help='torch threads')
    parser.add_argument('--json', help='write all results to this file')
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.train_repeats < 1:
        parser.error('--repeats and --train-repeats must be >= 1')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    def log(msg: str) -> None:
        print(f'[benchmark] {msg}', file=sys.stderr, flush=True)

    layers = QUICK_LAYERS if args.quick else RESNET50_LAYERS
    size = args.backbone_size or (32 if args.quick else 800)
    # float64 training check: 64x64 keeps the last maps at 2x2, so that the
    # train-mode BatchNorms do not normalise over two values (at 32x32
    # MobileNetV2 ends at 1x1, where float64 rounding is amplified to 1e-5)
    check_size = 64
    do_layers = args.only in (None, 'layers')
    do_backbones = args.only in (None, 'backbones')
    layer_modules = build_layers(layers, device) if do_layers else []
    backbones = {}
    if do_backbones:
        for name, cfg in (QUICK_BACKBONES
                          if args.quick else BACKBONES).items():
            backbones[name] = {
                preset: build_backbone(cfg, preset, device)
                for preset in ('static', ) + PRESETS
            }
    meta = dict(
        device=str(device),
        device_name=(torch.cuda.get_device_name(device)
                     if device.type == 'cuda' else cpu_name()),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        repeats=args.repeats,
        train_repeats=args.train_repeats,
        quick=args.quick,
        backbone_size=size,
        argv=sys.argv[1:] if argv is None else list(argv))
    print('# Dynamic convolution benchmark\n')
    print(f'device: {meta["device"]} ({meta["device_name"]}), threads: '
          f'{meta["threads"]}, torch {meta["torch"]}, median of '
          f'{args.train_repeats} (train) / {args.repeats} (infer) '
          f'interleaved runs after 1 warm-up; train = forward + backward at '
          f'batch {MODES["train"]}, infer = forward at batch '
          f'{MODES["infer"]}\n')
    start = time.perf_counter()
    try:
        checks = check_all(layers if do_layers else [], layer_modules,
                           backbones, check_size, size, device, log)
    except ExactnessError as err:
        print(f'EXACTNESS CHECK FAILED: {err}')
        log(f'EXACTNESS CHECK FAILED: {err}')
        return 1
    worst_out = max(c['output_rel_err'] for c in checks)
    worst_grad = max(c['grad_rel_err'] for c in checks
                     if c['grad_rel_err'] is not None)
    modules = len({c['name'] for c in checks})
    print(f'exactness (ours vs released): PASSED on {modules} modules '
          f'({len(checks)} checks: training and inference); worst relative '
          f'error: outputs {worst_out:.1e} (tol {OUT_TOL:g}), gradients '
          f'{worst_grad:.1e} (tol {GRAD_TOL:g})\n')
    results = dict(meta=meta, checks=checks)
    memory = not args.no_memory
    repeats = dict(train=args.train_repeats, infer=args.repeats)
    if do_layers:
        rows = bench_layers(layers, layer_modules, repeats, device, memory)
        results['layers'] = rows
        for mode, batch in MODES.items():
            print(f'## Layers, {mode} (batch {batch}), ms\n')
            print(format_layer_table(rows, mode) + '\n')
        log(f'layers done ({time.perf_counter() - start:.0f} s)')
    if do_backbones:
        rows = bench_backbones(backbones, size, repeats, device, memory, log)
        results['backbones'] = rows
        print(f'## Backbones, {size}x{size}, ms\n')
        print(format_backbone_table(rows) + '\n')
    meta['wall_s'] = time.perf_counter() - start
    print(f'total wall time: {meta["wall_s"]:.0f} s')
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
