"""The ``backbones`` part: whole backbones at their input sizes, every
preset of each backbone's table (and a user's layouts) against the static
preset.

The backbones are rows of the table shared with the complexity tool
(:data:`dynconv_mmdet.analysis.backbones.BACKBONES`); here each gets the
sizes it is timed at. The same modules are compiled for the ``compiled``
part (:mod:`.compiled`).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from ..backbones import backbone_cfg
from .exactness import (CHECK_BATCH, CHECK_SIZE, check_inference, check_module,
                        checkable)
from .part import Part, Run, variant_rows, variant_steps
from .presets import (LAYER_BACKBONE, UsageError, build_backbone,
                      check_presets, dynamic_presets, preset_table,
                      static_preset)
from .report import format_backbone_table
from .timing import MODES, run_interleaved


@dataclass(frozen=True)
class BackboneSpec:
    """A benchmarked backbone.

    Attributes:
        name (str): Row label, a row of the shared table
            (:data:`dynconv_mmdet.analysis.backbones.BACKBONES`).
        sizes (tuple[int]): Square input sizes of the eager rows; inference
            runs at every size, the training step at the first.
        compiled_sizes (tuple[int]): Sizes of the compiled rows.
        gpu_sizes, gpu_compiled_sizes (tuple[int]): The same for
            ``--gpu-subset``.
    """
    name: str
    sizes: Tuple[int, ...]
    compiled_sizes: Tuple[int, ...] = ()
    gpu_sizes: Tuple[int, ...] = ()
    gpu_compiled_sizes: Tuple[int, ...] = ()

    @property
    def cfg(self) -> dict:
        """The mmdet config, without ``preset``."""
        return backbone_cfg(self.name)


BACKBONES = (
    BackboneSpec('ResNet-50', (800, ), (800, ), (800, )),
    BackboneSpec('MobileNetV2 1.0', (800, 320), (800, 320), (800, 320),
                 (320, )),
    BackboneSpec('MobileNetV2 0.5', (800, 320), (), (320, )),
)
QUICK_BACKBONES = (
    BackboneSpec('ResNet-18 w16', (32, ), (32, ), (32, ), (32, )),
    BackboneSpec('MobileNetV2 0.5', (32, ), (32, ), (32, )),
)


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


class BackbonesPart(Part):
    """Whole backbones: static, then every variant released / ours.

    Args:
        run (Run): The run.
        timed (bool): Whether the eager rows are timed (``backbones``).
        compiled (bool): Whether the compiled rows are (the ``compiled``
            part compiles :attr:`plans`' modules).

    Attributes:
        plans (list[BackbonePlan]): The backbones with rows.
    """
    name = 'backbones'

    def __init__(self,
                 run: Run,
                 timed: bool = True,
                 compiled: bool = False) -> None:
        super().__init__(run, timed)
        self.compiled = compiled
        self.plans: List[BackbonePlan] = []

    @property
    def sizes(self) -> List[int]:
        """The sizes of the eager rows, largest first."""
        return sorted({s for p in self.plans for s in p.sizes}, reverse=True)

    def build(self) -> None:
        args = self.run.args
        table = QUICK_BACKBONES if args.quick else BACKBONES
        names = [spec.name for spec in table]
        if args.backbones:
            unknown = sorted(set(args.backbones) - set(names))
            if unknown:
                raise UsageError(f'--backbones: unknown {unknown}; choose '
                                 f'from {names}')
            table = tuple(s for s in table if s.name in args.backbones)
        for spec in table:
            sizes = spec.gpu_sizes if args.gpu_subset else spec.sizes
            compiled = (
                spec.gpu_compiled_sizes
                if args.gpu_subset else spec.compiled_sizes)
            if args.backbone_size:
                sizes = tuple(args.backbone_size)
                compiled = tuple(args.backbone_size) if compiled else ()
            plan = BackbonePlan(spec, sizes if self.timed else (),
                                compiled if self.compiled else ())
            if plan.sizes or plan.compiled_sizes:
                self.plans.append(plan)
        if self.plans:
            self._build_modules()

    def _build_modules(self) -> None:
        args, device, notes = self.run.args, self.run.device, self.run.notes
        check_presets(args.presets,
                      [LAYER_BACKBONE] + [p.spec.cfg for p in self.plans])
        fitted = dict.fromkeys(args.layouts, 0)
        for plan in self.plans:
            cfg = plan.spec.cfg
            presets = dynamic_presets(cfg, args.presets)
            clash = sorted(set(args.layouts) & set(preset_table(cfg)))
            if clash:
                raise UsageError(f'--dynamic: {clash} are presets of '
                                 f'{plan.spec.name}; name the layout '
                                 'otherwise')
            plan.modules['static'] = build_backbone(cfg, static_preset(cfg),
                                                    device)
            for preset in presets:
                plan.modules[preset] = build_backbone(cfg, preset, device)
            for name, layout in args.layouts.items():
                try:
                    plan.modules[name] = build_backbone(
                        cfg, static_preset(cfg), device, layout)
                    fitted[name] += 1
                except KeyError as err:
                    raise UsageError(
                        f'--dynamic {name}: {err.args[0]}') from err
                except ValueError as err:
                    notes.append(f'the {name} layout does not fit '
                                 f'{plan.spec.name}: {err}')
            self.run.log(f'built {plan.spec.name}: {", ".join(plan.modules)}')
        unfit = [name for name, count in fitted.items() if not count]
        if unfit:
            raise UsageError(f'--dynamic: {unfit} fit none of the backbones: '
                             f'{"; ".join(notes)}')

    def empty_note(self) -> Optional[str]:
        if self.timed and not any(p.sizes for p in self.plans):
            return ('no backbones rows: none of the chosen backbones has '
                    'backbones sizes (give --backbone-size)')
        return None

    def check(self) -> List[Dict]:
        """In training mode in float64 (:data:`~.exactness.CHECK_SIZE`,
        :data:`~.exactness.CHECK_BATCH`): through 50 layers and the
        train-mode BatchNorms (the attention BN of ODConv normalises over
        the pooled samples) float32 rounding alone is amplified beyond 1e-4
        for some gradients, while in float64 both formulations agree to
        ~1e-9 or better and any algebraic difference stands out. The
        inference pass is checked at every timed size, compiled sizes
        included (batch 1), in float32."""
        checks = []
        device = self.run.device
        for plan in self.plans:
            for variant in plan.variants:
                name = f'{plan.spec.name} {variant}'
                module = plan.modules[variant]
                if not checkable(name, module, self.run.no_reference):
                    continue
                if plan.sizes:
                    x = torch.randn(
                        CHECK_BATCH, 3, CHECK_SIZE, CHECK_SIZE, device=device)
                    checks.append(check_module(name, module, x, torch.float64))
                for size in dict.fromkeys(plan.sizes + plan.compiled_sizes):
                    x = torch.randn(
                        MODES['infer'], 3, size, size, device=device)
                    checks.append(check_inference(name, module, x))
        return checks

    def time(self) -> List[Dict]:
        """Every backbone at each of its sizes (the training step at the
        first): static, then every variant released / ours, round-robin
        within one backbone, size and mode."""
        rows = []
        repeats, device = self.run.repeats, self.run.device
        for plan in self.plans:
            dynamic = {v: plan.modules[v] for v in plan.variants}
            for i, size in enumerate(plan.sizes):
                for mode, batch in MODES.items():
                    if mode == 'train' and i > 0:
                        continue
                    x = torch.randn(batch, 3, size, size, device=device)
                    steps = variant_steps(plan.modules['static'], dynamic, x,
                                          mode)
                    res, peaks = run_interleaved(steps, repeats[mode], device,
                                                 self.run.memory)
                    group = variant_rows(
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
                        self.run.log(
                            f'{plan.spec.name} {size} {row["preset"]} '
                            f'{mode}: ' +
                            ', '.join(f'{impl} {t["median_ms"]:.0f} ms'
                                      for impl, t in row['times'].items()))
                    rows += group
        return rows

    def report(self, rows: List[Dict]) -> List[str]:
        blocks = []
        for size in self.sizes:
            blocks += [
                f'## Backbones, {size}x{size}, ms',
                format_backbone_table([r for r in rows if r['size'] == size])
            ]
        return blocks
