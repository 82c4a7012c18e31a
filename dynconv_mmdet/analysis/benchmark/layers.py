"""The ``layers`` part: the convs of a ResNet-50 under a 1333x800 image,
one conv of every kind (:func:`~.presets.layer_kinds`) per shape, against
``nn.Conv2d``."""
import copy
import time
from typing import Dict, List

import torch
import torch.nn as nn
from mmdet.registry import MODELS

from ...models.layers import finalize_dynamic_convs
from .exactness import check_inference, check_module, checkable
from .part import Part, variant_rows, variant_steps
from .presets import (LAYER_BACKBONE, UsageError, check_presets, layer_kinds,
                      preset_table)
from .report import format_layer_table
from .timing import MODES, run_interleaved

# ResNet-50 convs under a 1333x800 image padded to 1344x800:
# (name, C_in, C_out, k, stride, H, W) with H, W the input size.
RESNET50_LAYERS = (
    ('layer1 1x1', 256, 64, 1, 1, 200, 336),
    ('layer1 3x3', 64, 64, 3, 1, 200, 336),
    ('layer1 1x1', 64, 256, 1, 1, 200, 336),
    ('layer2 3x3', 128, 128, 3, 1, 100, 168),
    ('layer2 1x1', 128, 512, 1, 1, 100, 168),
    ('layer3 3x3', 256, 256, 3, 1, 50, 84),
    ('layer3 1x1', 1024, 256, 1, 1, 50, 84),
    ('layer4 3x3', 512, 512, 3, 1, 25, 42),
    ('layer4 1x1', 512, 2048, 1, 1, 25, 42),
)
QUICK_LAYERS = (
    ('layer1 3x3', 16, 16, 3, 1, 12, 16),
    ('layer1 1x1', 16, 32, 1, 1, 12, 16),
)


def build_layer(cin: int, cout: int, k: int, stride: int, conv_cfg: dict,
                device: torch.device) -> nn.Module:
    """One conv of type ``conv_cfg`` (padding ``k // 2``, no bias).

    A family that completes its convs as a group
    (:meth:`~dynconv_mmdet.models.layers.DynamicConv2d.finalize_group`) is
    finalised as a group of one; should it add shared state, the conv is
    returned inside the ``nn.Sequential`` that holds it.
    """
    cfg = dict(
        copy.deepcopy(conv_cfg),
        in_channels=cin,
        out_channels=cout,
        kernel_size=k,
        stride=stride,
        padding=k // 2,
        bias=False)
    holder = nn.Sequential(MODELS.build(cfg))
    finalize_dynamic_convs(holder)
    shared = (
        len(holder._modules) > 1 or bool(holder._parameters)
        or bool(holder._buffers))
    return (holder if shared else holder[0]).to(device)


def build_static_layer(cin: int, cout: int, k: int, stride: int,
                       device: torch.device) -> nn.Module:
    """The static twin of :func:`build_layer`."""
    return nn.Conv2d(cin, cout, k, stride, k // 2, bias=False).to(device)


class LayersPart(Part):
    """Single convs: per shape ``static`` and every kind, released / ours.

    Attributes:
        shapes: ``(name, C_in, C_out, k, stride, H, W)`` per shape.
        modules: Per shape, ``kind -> module`` (``'static'`` first).
    """
    name = 'layers'

    def build(self) -> None:
        args, device = self.run.args, self.run.device
        self.shapes = QUICK_LAYERS if args.quick else RESNET50_LAYERS
        check_presets(args.presets, [LAYER_BACKBONE])
        clash = sorted(set(args.layouts) & set(preset_table(LAYER_BACKBONE)))
        if clash:
            raise UsageError(f'--dynamic: {clash} are presets; name the '
                             'layout otherwise')
        kinds = layer_kinds(args.presets, args.layouts)
        self.modules: List[Dict[str, nn.Module]] = []
        for (_, cin, cout, k, stride, _, _) in self.shapes:
            modules = {
                'static': build_static_layer(cin, cout, k, stride, device)
            }
            for kind, conv_cfg in kinds.items():
                try:
                    modules[kind] = build_layer(cin, cout, k, stride, conv_cfg,
                                                device)
                except KeyError as err:
                    raise UsageError(f'layer {kind}: {err.args[0]}') from err
            self.modules.append(modules)

    def check(self) -> List[Dict]:
        """At the timed shapes, in float32: a training pass at batch 2
        (outputs and gradients) and an inference pass at batch 1
        (outputs)."""
        checks = []
        for spec, modules in zip(self.shapes, self.modules):
            lname, cin, cout, _, _, h, w = spec
            for kind, module in modules.items():
                name = f'{kind} {lname} {cin}->{cout} {h}x{w}'
                if kind == 'static' or not checkable(name, module,
                                                     self.run.no_reference):
                    continue
                x = torch.randn(
                    MODES['train'], cin, h, w, device=self.run.device)
                checks.append(check_module(name, module, x))
                x = torch.randn(
                    MODES['infer'], cin, h, w, device=self.run.device)
                checks.append(check_inference(name, module, x))
        return checks

    def time(self) -> List[Dict]:
        """Every shape: static, then every kind released / ours,
        round-robin within one shape and mode."""
        rows = []
        repeats = self.run.repeats
        for (lname, cin, cout, k, stride, h,
             w), modules in zip(self.shapes, self.modules):
            dynamic = {
                kind: m
                for kind, m in modules.items() if kind != 'static'
            }
            for mode, batch in MODES.items():
                x = torch.randn(batch, cin, h, w, device=self.run.device)
                steps = variant_steps(modules['static'], dynamic, x, mode)
                res, peaks = run_interleaved(steps, repeats[mode],
                                             self.run.device, self.run.memory)
                rows += variant_rows(
                    res,
                    peaks,
                    list(dynamic),
                    layer=lname,
                    shape=f'{cin}->{cout} k{k} s{stride} {h}x{w}',
                    mode=mode,
                    batch=batch)
        self.run.log(
            f'layers done ({time.perf_counter() - self.run.start:.0f} s)')
        return rows

    def report(self, rows: List[Dict]) -> List[str]:
        blocks = []
        for mode, batch in MODES.items():
            blocks += [
                f'## Layers, {mode} (batch {batch}), ms',
                format_layer_table(rows, mode)
            ]
        return blocks
