"""Every preset of every dynamic backbone, from the preset tables: a preset
line added for a new family is built, placed and run here without a line
added to this test.

Small widths keep it fast; the pinned parameter counts of the published
layouts are in ``test_dynamic_backbones.py``.
"""
from typing import Dict

import pytest
import torch
from mmdet.registry import MODELS

from dynconv_mmdet.models.layers import DynamicConv2d

#: backbone -> small arguments that keep every stage (and so every site of a
#: layout) of the architecture the presets are written for
BACKBONES: Dict[str, dict] = {
    'DynamicResNet': dict(depth=18, base_channels=16),
    'DynamicMobileNetV2': dict(widen_factor=0.5),
    'DynamicCSPNeXt': dict(deepen_factor=0.167, widen_factor=0.25),
    'DynamicCSPDarknet': dict(deepen_factor=0.1, widen_factor=0.25),
}


def _cases():
    return [
        pytest.param(backbone, preset, id=f'{backbone}-{preset}')
        for backbone in BACKBONES for preset in MODELS.get(backbone).presets
    ]


def _build(backbone: str, preset: str) -> torch.nn.Module:
    return MODELS.build(
        dict(type=backbone, preset=preset, **BACKBONES[backbone]))


@pytest.mark.parametrize('backbone,preset', _cases())
def test_preset_builds_places_its_family_and_runs(backbone, preset):
    model = _build(backbone, preset)
    static = _build(backbone, 'static')
    layout = model.presets[preset]
    dynamic = [m for m in model.modules() if isinstance(m, DynamicConv2d)]
    if layout is None:
        assert not dynamic
    else:
        family = MODELS.get(layout['conv_cfg']['type'])
        assert dynamic and all(isinstance(m, family) for m in dynamic)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    outs = model(x)
    sum(out.float().sum() for out in outs).backward()
    static.eval()
    model.eval()
    with torch.no_grad():
        expected = static(x[:1])
        single = model(x[:1])
    assert [o.shape for o in single] == [o.shape for o in expected]
    assert all(torch.isfinite(o).all() for o in single)


@pytest.mark.parametrize('backbone,preset', _cases())
def test_preset_is_counted_on_the_meta_device(backbone, preset):
    """What the complexity tool does for every preset: build on the meta
    device (no memory, no arithmetic) and count parameters and FLOPs."""
    from dynconv_mmdet.analysis.complexity import model_flops
    with torch.device('meta'):
        model = _build(backbone, preset)
    flops = model_flops(model, (1, 3, 64, 64))
    assert flops['total'] > 0
    overhead = sum(
        flops.get(f'dynamic {k}', 0)
        for k in ('pool', 'attention', 'aggregation'))
    assert (overhead > 0) == (model.presets[preset] is not None)
