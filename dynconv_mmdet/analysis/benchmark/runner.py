"""The benchmark run: parse the command line, build, check, time, print.

Order of a run: every module is built, every exactness check runs (and
every compiled module is compiled and compared with its eager self), and
only then is anything timed; a mismatch prints ``EXACTNESS CHECK FAILED``
and ends the run with status 1.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ...models.layers import DynamicConv2d
from ..cli import import_custom_modules
from ..reference import has_reference
from . import detectors as det
from .compiled import (CompileError, compile_for, compile_limits,
                       compile_module, graphs_compiled)
from .exactness import (COMPILED_TOL, GRAD_TOL, OUT_TOL, ExactnessError,
                        check_compiled, check_inference, check_module)
from .report import (cpu_name, format_backbone_table, format_compiled_table,
                     format_detector_table, format_layer_table)
from .suites import (BACKBONES, CUSTOM, LAYER_BACKBONE, QUICK_BACKBONES,
                     QUICK_LAYERS, RESNET50_LAYERS, BackboneSpec,
                     build_backbone, build_layer, build_static_layer,
                     dynamic_presets, has_dynamic_convs, layer_kinds,
                     parse_layout, preset_table, static_preset)
from .timing import MODES, Step, make_step, run_interleaved

#: The parts of a run, in the order they are timed and printed.
PARTS = ('layers', 'backbones', 'compiled', 'detectors')
#: The parts of ``--gpu-subset``.
GPU_SUBSET_PARTS = ('backbones', 'compiled', 'detectors')
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
#: Graphs dynamo may keep per code object in the compiled part: every module
#: of one class (and every block, should a graph break split it) shares its
#: code, once per size.
COMPILE_GRAPHS = 4096

Log = Callable[[str], None]


class UsageError(ValueError):
    """A bad command line; the message says what to do."""


def default_config_dir() -> str:
    """``configs/`` of the repository (or of the installed package)."""
    package = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    for candidate in (osp.join(osp.dirname(package),
                               'configs'), osp.join(package, '.mim',
                                                    'configs')):
        if osp.isdir(candidate):
            return candidate
    return osp.join(osp.dirname(package), 'configs')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='benchmark_dynconv.py',
        description='Speed and memory of the dynamic convolutions against '
        'static convs, with an exactness check before any timing '
        '(docs/benchmark.md).')
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
        '--quick',
        action='store_true',
        help='tiny layers, backbones (ResNet-18 w16, MobileNetV2 0.5 at '
        '32x32) and detector inputs (128x128, one-stage also 64x64), for '
        'tests')
    parser.add_argument(
        '--only',
        nargs='+',
        choices=PARTS,
        help=f'parts to run (default: all of {", ".join(PARTS)})')
    parser.add_argument(
        '--gpu-subset',
        action='store_true',
        help='the subset sized for a GPU run of under 5 minutes: backbones '
        '(smaller size set), compiled MobileNetV2 1.0 at 320x320 and the '
        'detectors; no layer rows')
    parser.add_argument(
        '--backbones', nargs='+', help='backbone rows to run (by name)')
    parser.add_argument(
        '--backbone-size',
        type=int,
        nargs='+',
        help='square input sizes of every backbone (training at the first; '
        'default: per backbone, 800 and 320 for MobileNetV2)')
    parser.add_argument(
        '--presets',
        nargs='+',
        help='dynamic presets to run (default: every preset of each '
        "backbone's table)")
    parser.add_argument(
        '--dynamic',
        action='append',
        default=[],
        metavar='[NAME=]DICT',
        help='a dynamic= layout (a Python dict) benchmarked as one more row '
        f'beside the presets, named NAME (default "{CUSTOM}"), e.g. '
        '"foo=dict(conv_cfg=dict(type=\'FooConv2d\'), stages=(True,)*4)"; '
        'may be given more than once')
    parser.add_argument(
        '--custom-imports',
        nargs='+',
        metavar='MODULE',
        help='modules to import first (e.g. one that registers a '
        "DynamicConv2d subclass in mmengine's root MODELS)")
    parser.add_argument(
        '--detectors',
        nargs='+',
        metavar='PATTERN',
        help='config names (fnmatch patterns) of the detector rows '
        '(default: every config without a mask head); each is timed '
        'against its static twin')
    parser.add_argument(
        '--detector-size',
        type=int,
        nargs='+',
        help='square input sizes of every detector (training at the first; '
        'default: the test pipeline\'s size, one-stage detectors also 320)')
    parser.add_argument(
        '--config-dir',
        default=default_config_dir(),
        help='configs (and metafile.yml) of the detector rows')
    parser.add_argument(
        '--compile-backend',
        default='inductor',
        help='torch.compile backend of the compiled rows')
    parser.add_argument(
        '--no-memory', action='store_true', help='skip the memory pass')
    parser.add_argument('--threads', type=int, help='torch threads')
    parser.add_argument('--json', help='write all results to this file')
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.train_repeats < 1:
        parser.error('--repeats and --train-repeats must be >= 1')
    for option in ('backbone_size', 'detector_size'):
        if any(size < 16 for size in getattr(args, option) or ()):
            parser.error(f'--{option.replace("_", "-")}: sizes must be >= 16')
    args.layouts = {}
    for text in args.dynamic:
        try:
            name, layout = parse_layout(text)
        except ValueError as err:
            parser.error(str(err))
        if name in args.layouts or name == 'static':
            parser.error(f'--dynamic: the name {name!r} is taken; give '
                         'each layout its own NAME=')
        args.layouts[name] = layout
    return args


@dataclass
class BackbonePlan:
    """One backbone's rows: its sizes and its modules (``'static'`` and
    one per dynamic variant)."""
    spec: BackboneSpec
    sizes: Tuple[int, ...]
    compiled_sizes: Tuple[int, ...]
    modules: Dict[str, nn.Module] = field(default_factory=dict)

    @property
    def variants(self) -> List[str]:
        return [v for v in self.modules if v != 'static']


def _import_custom(modules: Sequence[str]) -> None:
    try:
        import_custom_modules(modules)
    except ImportError as err:
        raise UsageError(
            f'--custom-imports: {err}; give importable module names (on '
            'sys.path, e.g. PYTHONPATH=.)') from err


def _families(module: nn.Module) -> str:
    names = sorted({
        type(m).__name__
        for m in module.modules() if isinstance(m, DynamicConv2d)
    })
    return ', '.join(names)


def _with_reference(module: nn.Module) -> bool:
    """Whether ``module`` has dynamic convs with a released formulation
    (then ``released`` is timed and checked)."""
    return has_dynamic_convs(module) and has_reference(module)


def _check_presets(args: argparse.Namespace, cfgs: List[dict]) -> None:
    if not args.presets:
        return
    known = set()
    for cfg in cfgs:
        known.update(preset_table(cfg))
    unknown = sorted(set(args.presets) - known)
    if unknown:
        raise UsageError(f'--presets: unknown {unknown}; the preset tables '
                         f'of the benchmarked backbones have {sorted(known)}')


def _plan_backbones(args: argparse.Namespace, parts: Sequence[str],
                    device: torch.device, log: Log,
                    notes: List[str]) -> List[BackbonePlan]:
    table = QUICK_BACKBONES if args.quick else BACKBONES
    names = [spec.name for spec in table]
    if args.backbones:
        unknown = sorted(set(args.backbones) - set(names))
        if unknown:
            raise UsageError(f'--backbones: unknown {unknown}; choose from '
                             f'{names}')
        table = tuple(s for s in table if s.name in args.backbones)
    plans = []
    for spec in table:
        sizes = spec.gpu_sizes if args.gpu_subset else spec.sizes
        compiled = (
            spec.gpu_compiled_sizes
            if args.gpu_subset else spec.compiled_sizes)
        if args.backbone_size:
            sizes = tuple(args.backbone_size)
            compiled = tuple(args.backbone_size) if compiled else ()
        plan = BackbonePlan(spec, sizes if 'backbones' in parts else (),
                            compiled if 'compiled' in parts else ())
        if plan.sizes or plan.compiled_sizes:
            plans.append(plan)
    if not plans:
        return plans
    _check_presets(args, [LAYER_BACKBONE] + [p.spec.cfg for p in plans])
    fitted = dict.fromkeys(args.layouts, 0)
    for plan in plans:
        cfg = plan.spec.cfg
        presets = dynamic_presets(cfg, args.presets)
        clash = sorted(set(args.layouts) & set(preset_table(cfg)))
        if clash:
            raise UsageError(f'--dynamic: {clash} are presets of '
                             f'{plan.spec.name}; name the layout otherwise')
        plan.modules['static'] = build_backbone(cfg, static_preset(cfg),
                                                device)
        for preset in presets:
            plan.modules[preset] = build_backbone(cfg, preset, device)
        for name, layout in args.layouts.items():
            try:
                plan.modules[name] = build_backbone(cfg, static_preset(cfg),
                                                    device, layout)
                fitted[name] += 1
            except KeyError as err:
                raise UsageError(f'--dynamic {name}: {err.args[0]}') from err
            except ValueError as err:
                notes.append(f'the {name} layout does not fit '
                             f'{plan.spec.name}: {err}')
        log(f'built {plan.spec.name}: {", ".join(plan.modules)}')
    unfit = [name for name, count in fitted.items() if not count]
    if unfit:
        raise UsageError(f'--dynamic: {unfit} fit none of the backbones: '
                         f'{"; ".join(notes)}')
    return plans


def _build_layers(
    args: argparse.Namespace, device: torch.device
) -> Tuple[Sequence[tuple], Dict[str, dict], List[Dict]]:
    shapes = QUICK_LAYERS if args.quick else RESNET50_LAYERS
    _check_presets(args, [LAYER_BACKBONE])
    clash = sorted(set(args.layouts) & set(preset_table(LAYER_BACKBONE)))
    if clash:
        raise UsageError(f'--dynamic: {clash} are presets; name the layout '
                         'otherwise')
    kinds = layer_kinds(args.presets, args.layouts)
    built = []
    for (_, cin, cout, k, stride, _, _) in shapes:
        modules = {'static': build_static_layer(cin, cout, k, stride, device)}
        for kind, conv_cfg in kinds.items():
            try:
                modules[kind] = build_layer(cin, cout, k, stride, conv_cfg,
                                            device)
            except KeyError as err:
                raise UsageError(f'layer {kind}: {err.args[0]}') from err
        built.append(modules)
    return shapes, kinds, built


def _variant_steps(static: nn.Module, dynamic: Dict[str, nn.Module], x,
                   mode: str) -> Dict[Tuple[str, str], Step]:
    """The static module once, then released (when it has one) and ours
    per dynamic variant."""
    steps = {('static', 'static'): make_step(static, x, mode)}
    for variant, module in dynamic.items():
        if _with_reference(module):
            steps[(variant, 'released')] = make_step(module, x, mode, True)
        steps[(variant, 'ours')] = make_step(module, x, mode)
    return steps


def _rows(res: Dict, peaks: Dict, variants: Sequence[str],
          **fields) -> List[Dict]:
    rows = []
    for variant in variants:
        keys = dict(
            static=('static', 'static'),
            released=(variant, 'released'),
            ours=(variant, 'ours'))
        keys = {impl: key for impl, key in keys.items() if key in res}
        row = dict(
            fields,
            kind=variant,
            times={
                impl: res[key]
                for impl, key in keys.items()
            })
        if peaks:
            row['peak_mib'] = {impl: peaks[key] for impl, key in keys.items()}
        rows.append(row)
    return rows


# --------------------------------------------------------------------------
# Checks
def check_all(layers,
              layer_modules: List[Dict[str, nn.Module]],
              backbones: List[BackbonePlan],
              detector_groups: Dict,
              detector_models: Dict[str, nn.Module],
              device: torch.device,
              log: Log,
              no_reference: Optional[List[str]] = None) -> List[Dict]:
    """Exactness of ``ours`` vs ``released`` for every timed module with a
    released formulation, on the code paths that are timed.

    Single layers are checked at their timed shapes in float32: a training
    pass at batch 2 (outputs and gradients) and an inference pass at batch 1
    (outputs). Whole backbones (and detectors' backbone + neck,
    ``extract_feat``) are checked in training mode in float64
    (:data:`CHECK_SIZE`, :data:`CHECK_BATCH`): through 50 layers and the
    train-mode BatchNorms (the attention BN of ODConv normalises over the
    pooled samples) float32 rounding alone is amplified beyond 1e-4 for some
    gradients, while in float64 both formulations agree to ~1e-9 or better
    and any algebraic difference stands out; their inference pass is
    checked at
    every timed size (batch 1) in float32. Modules whose dynamic convs have
    no released formulation are listed in ``no_reference``.
    """
    checks = []
    skipped = [] if no_reference is None else no_reference

    def usable(name: str, module: nn.Module) -> bool:
        if not has_dynamic_convs(module):
            return False
        if not has_reference(module):
            skipped.append(f'{name} ({_families(module)})')
            return False
        return True

    for spec, modules in zip(layers, layer_modules):
        lname, cin, cout, _, _, h, w = spec
        for kind, module in modules.items():
            name = f'{kind} {lname} {cin}->{cout} {h}x{w}'
            if kind == 'static' or not usable(name, module):
                continue
            x = torch.randn(MODES['train'], cin, h, w, device=device)
            checks.append(check_module(name, module, x))
            x = torch.randn(MODES['infer'], cin, h, w, device=device)
            checks.append(check_inference(name, module, x))
    for plan in backbones:
        for variant in plan.variants:
            name = f'{plan.spec.name} {variant}'
            module = plan.modules[variant]
            if not usable(name, module):
                continue
            if plan.sizes:
                x = torch.randn(
                    CHECK_BATCH, 3, CHECK_SIZE, CHECK_SIZE, device=device)
                checks.append(check_module(name, module, x, torch.float64))
            for size in dict.fromkeys(plan.sizes + plan.compiled_sizes):
                x = torch.randn(MODES['infer'], 3, size, size, device=device)
                checks.append(check_inference(name, module, x))
    for base, configs in detector_groups.values():
        for cfg in configs:
            module = det.FeatureExtractor(detector_models[cfg.name])
            if not usable(cfg.name, module):
                continue
            x = torch.randn(
                CHECK_BATCH, 3, CHECK_SIZE, CHECK_SIZE, device=device)
            checks.append(check_module(cfg.name, module, x, torch.float64))
            for size in base.sizes:
                x = torch.randn(MODES['infer'], 3, size, size, device=device)
                checks.append(check_inference(cfg.name, module, x))
    log(f'exactness check passed: {len(checks)} checks, outputs <= '
        f'{OUT_TOL:g}, gradients <= {GRAD_TOL:g} (relative to the largest '
        'magnitude of each tensor)')
    return checks


def compile_all(backbones: List[BackbonePlan], backend: str,
                device: torch.device,
                log: Log) -> Tuple[Dict, Dict, List[Dict]]:
    """Compile every module of the compiled rows for each of its sizes and
    compare its outputs with the eager module's.

    Returns:
        tuple: ``(backbone, variant) -> compiled module``,
        ``(backbone, variant, size) -> compile seconds`` and the checks.
    """
    compiled, seconds, checks = {}, {}, []
    for plan in backbones:
        for variant, module in plan.modules.items():
            if not plan.compiled_sizes:
                continue
            name = f'{plan.spec.name} {variant}'
            module.eval()
            fast = compile_module(module, backend)
            compiled[(plan.spec.name, variant)] = fast
            for size in plan.compiled_sizes:
                x = torch.randn(MODES['infer'], 3, size, size, device=device)
                seconds[(plan.spec.name, variant,
                         size)] = compile_for(fast, x, device, name)
                checks.append(check_compiled(name, fast, module, x))
                log(f'compiled {name} at {size}x{size}: '
                    f'{seconds[(plan.spec.name, variant, size)]:.1f} s')
    return compiled, seconds, checks


# --------------------------------------------------------------------------
# Timing
def bench_layers(layers, layer_modules: List[Dict[str, nn.Module]],
                 repeats: Dict[str, int], device: torch.device,
                 memory: bool) -> List[Dict]:
    """Time every layer shape: static, then every kind released / ours,
    round-robin within one shape and mode (``repeats`` per mode)."""
    rows = []
    for (lname, cin, cout, k, stride, h,
         w), modules in zip(layers, layer_modules):
        dynamic = {kind: m for kind, m in modules.items() if kind != 'static'}
        for mode, batch in MODES.items():
            x = torch.randn(batch, cin, h, w, device=device)
            steps = _variant_steps(modules['static'], dynamic, x, mode)
            res, peaks = run_interleaved(steps, repeats[mode], device, memory)
            rows += _rows(
                res,
                peaks,
                list(dynamic),
                layer=lname,
                shape=f'{cin}->{cout} k{k} s{stride} {h}x{w}',
                mode=mode,
                batch=batch)
    return rows


def bench_backbones(backbones: List[BackbonePlan], repeats: Dict[str, int],
                    device: torch.device, memory: bool,
                    log: Log) -> List[Dict]:
    """Time every backbone at each of its sizes (the training step at the
    first): static, then every variant released / ours, round-robin within
    one backbone, size and mode (``repeats`` per mode)."""
    rows = []
    for plan in backbones:
        dynamic = {v: plan.modules[v] for v in plan.variants}
        for i, size in enumerate(plan.sizes):
            for mode, batch in MODES.items():
                if mode == 'train' and i > 0:
                    continue
                x = torch.randn(batch, 3, size, size, device=device)
                steps = _variant_steps(plan.modules['static'], dynamic, x,
                                       mode)
                res, peaks = run_interleaved(steps, repeats[mode], device,
                                             memory)
                group = _rows(
                    res,
                    peaks,
                    list(dynamic),
                    backbone=plan.spec.name,
                    mode=mode,
                    batch=batch,
                    size=size,
                    repeats=repeats[mode])
                for row in group:
                    row['preset'] = row.pop('kind')
                    log(f'{plan.spec.name} {size} {row["preset"]} {mode}: ' +
                        ', '.join(f'{impl} {t["median_ms"]:.0f} ms'
                                  for impl, t in row['times'].items()))
                rows += group
    return rows


def bench_compiled(backbones: List[BackbonePlan], compiled: Dict,
                   seconds: Dict, repeats: int, device: torch.device,
                   log: Log) -> List[Dict]:
    """Time the compiled modules (inference, batch 1): static compiled and
    every variant compiled, round-robin within one backbone and size."""
    rows = []
    for plan in backbones:
        name = plan.spec.name
        for size in plan.compiled_sizes:
            x = torch.randn(MODES['infer'], 3, size, size, device=device)
            steps = {
                variant: make_step(compiled[(name, variant)], x, 'infer')
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
                        times=dict(static=res['static'], ours=res[variant]),
                        compile_s=dict(
                            static=seconds[(name, 'static', size)],
                            ours=seconds[(name, variant, size)])))
                log(f'compiled {name} {size} {variant}: static '
                    f'{res["static"]["median_ms"]:.0f} ms, ours '
                    f'{res[variant]["median_ms"]:.0f} ms')
    return rows


def bench_detectors(groups: Dict, models: Dict[str, nn.Module],
                    repeats: Dict[str, int], device: torch.device,
                    memory: bool, log: Log) -> List[Dict]:
    """Time every detector group at each of its sizes (the training step at
    the first): the baseline, then every config, round-robin."""
    rows = []
    for base, configs in groups.values():
        classes = det.num_classes(base.model)
        for i, size in enumerate(base.sizes):
            for mode, batch in MODES.items():
                if mode == 'train' and i > 0:
                    continue
                images, samples = det.detector_inputs(batch, size, classes,
                                                      device)
                steps = {
                    name: det.detector_step(models[name], images, samples,
                                            mode)
                    for name in [base.name] + [c.name for c in configs]
                }
                res, peaks = run_interleaved(steps, repeats[mode], device,
                                             memory)
                for cfg in configs:
                    row = dict(
                        config=cfg.name,
                        baseline=base.name,
                        size=size,
                        mode=mode,
                        batch=batch,
                        repeats=repeats[mode],
                        times=dict(
                            baseline=res[base.name], config=res[cfg.name]))
                    if peaks:
                        row['peak_mib'] = dict(
                            baseline=peaks[base.name], config=peaks[cfg.name])
                    rows.append(row)
                    log(f'{cfg.name} {size} {mode}: baseline '
                        f'{res[base.name]["median_ms"]:.0f} ms, config '
                        f'{res[cfg.name]["median_ms"]:.0f} ms')
    return rows


# --------------------------------------------------------------------------
# The run
def _summary(checks: List[Dict], label: str, out_tol: float) -> str:
    """The exactness line: modules, checks and the worst errors."""
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


def _run(args: argparse.Namespace, argv: Optional[Sequence[str]],
         stack: ExitStack) -> int:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    def log(msg: str) -> None:
        print(f'[benchmark] {msg}', file=sys.stderr, flush=True)

    if args.custom_imports:
        _import_custom(args.custom_imports)
    parts = [
        p for p in PARTS
        if p in (args.only or (GPU_SUBSET_PARTS if args.gpu_subset else PARTS))
    ]
    notes: List[str] = []
    layers, layer_modules = (), []
    if 'layers' in parts:
        layers, _, layer_modules = _build_layers(args, device)
    backbones = _plan_backbones(args, parts, device, log, notes)
    groups, det_models = {}, {}
    if 'detectors' in parts:
        groups, det_notes = det.select(args.config_dir, args.detectors,
                                       args.presets, args.detector_size,
                                       args.quick)
        notes += det_notes
        _check_presets(args, [LAYER_BACKBONE] + [
            c.model['backbone'] for base, cfgs in groups.values()
            for c in [base] + cfgs if 'preset' in c.model.get('backbone', {})
        ])
        if not groups:
            raise UsageError(
                f'--detectors: no config of {args.config_dir} to time '
                f'(patterns {args.detectors}); give config names such as '
                'odconv_faster_rcnn_r50_fpn_1x')
        for base, cfgs in groups.values():
            for cfg in [base] + cfgs:
                torch.manual_seed(0)
                det_models[cfg.name] = det.build_detector(cfg.model, device)
            log(f'built {base.name} and {", ".join(c.name for c in cfgs)}')
    sizes = sorted({s for p in backbones for s in p.sizes}, reverse=True)
    for part, attr in (('backbones', 'sizes'), ('compiled', 'compiled_sizes')):
        if part in parts and not any(getattr(p, attr) for p in backbones):
            notes.append(f'no {part} rows: none of the chosen backbones has '
                         f'{part} sizes (give --backbone-size)')
    meta = dict(
        device=str(device),
        device_name=(torch.cuda.get_device_name(device)
                     if device.type == 'cuda' else cpu_name()),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        repeats=args.repeats,
        train_repeats=args.train_repeats,
        quick=args.quick,
        gpu_subset=args.gpu_subset,
        parts=parts,
        backbone_sizes=sizes,
        compile_backend=args.compile_backend if 'compiled' in parts else None,
        layouts={
            name: repr(lay)
            for name, lay in args.layouts.items()
        },
        argv=sys.argv[1:] if argv is None else list(argv))
    print('# Dynamic convolution benchmark\n')
    print(f'device: {meta["device"]} ({meta["device_name"]}), threads: '
          f'{meta["threads"]}, torch {meta["torch"]}, median of '
          f'{args.train_repeats} (train) / {args.repeats} (infer) '
          f'interleaved runs after 1 warm-up; train = forward + backward at '
          f'batch {MODES["train"]}, infer = forward at batch '
          f'{MODES["infer"]}\n')
    for name, layout in args.layouts.items():
        print(f'{name}: dynamic={layout!r}\n')
    start = time.perf_counter()
    no_reference: List[str] = []
    compiled_checks: List[Dict] = []
    if 'compiled' in parts:
        stack.enter_context(compile_limits(COMPILE_GRAPHS))
    try:
        checks = check_all(layers, layer_modules, backbones, groups,
                           det_models, device, log, no_reference)
        if 'compiled' in parts:
            compiled, seconds, compiled_checks = compile_all(
                backbones, args.compile_backend, device, log)
    except ExactnessError as err:
        print(f'EXACTNESS CHECK FAILED: {err}')
        log(f'EXACTNESS CHECK FAILED: {err}')
        return 1
    except CompileError as err:
        print(f'COMPILE FAILED: {err}')
        log(f'COMPILE FAILED: {err}')
        return 1
    if checks:
        print(_summary(checks, 'ours vs released', OUT_TOL) + '\n')
    else:
        print('exactness (ours vs released): no timed module has dynamic '
              'convs with a released formulation\n')
    if compiled_checks:
        print(
            _summary(compiled_checks, 'compiled vs eager', COMPILED_TOL) +
            '\n')
    if no_reference:
        print('no released formulation (released cells "-"): ' +
              '; '.join(dict.fromkeys(no_reference)) + '\n')
    for note in notes:
        print(f'note: {note}\n')
    results = dict(
        meta=meta, checks=checks, compiled_checks=compiled_checks, notes=notes)
    memory = not args.no_memory
    repeats = dict(train=args.train_repeats, infer=args.repeats)
    if 'layers' in parts:
        rows = bench_layers(layers, layer_modules, repeats, device, memory)
        results['layers'] = rows
        for mode, batch in MODES.items():
            print(f'## Layers, {mode} (batch {batch}), ms\n')
            print(format_layer_table(rows, mode) + '\n')
        log(f'layers done ({time.perf_counter() - start:.0f} s)')
    if 'backbones' in parts:
        rows = bench_backbones(backbones, repeats, device, memory, log)
        results['backbones'] = rows
        for size in sizes:
            print(f'## Backbones, {size}x{size}, ms\n')
            print(
                format_backbone_table([r for r in rows if r['size'] == size]) +
                '\n')
    if 'compiled' in parts:
        graphs = graphs_compiled()
        rows = bench_compiled(backbones, compiled, seconds, args.repeats,
                              device, log)
        results['compiled'] = rows
        print('## Compiled backbones (torch.compile, backend '
              f'{args.compile_backend}), infer (batch {MODES["infer"]}), '
              'ms\n')
        print(format_compiled_table(rows) + '\n')
        recompiled = graphs_compiled() - graphs
        if recompiled:
            notes.append(f'{recompiled} graphs were compiled while the '
                         'compiled rows were timed (a guard failed): those '
                         'rows include compilation')
            print(f'note: {notes[-1]}\n')
    if 'detectors' in parts:
        rows = bench_detectors(groups, det_models, repeats, device, memory,
                               log)
        results['detectors'] = rows
        print('## Detectors, ms\n')
        print(format_detector_table(rows) + '\n')
    meta['wall_s'] = time.perf_counter() - start
    print(f'total wall time: {meta["wall_s"]:.0f} s')
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; the exit status: 0, 1 (an exactness check or
    the compiler failed), 2 (a bad command line)."""
    args = parse_args(argv)
    threads = torch.get_num_threads()
    try:
        with ExitStack() as stack:
            return _run(args, argv, stack)
    except UsageError as err:
        print(f'benchmark_dynconv.py: error: {err}', file=sys.stderr)
        return 2
    finally:
        torch.set_num_threads(threads)
