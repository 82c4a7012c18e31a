"""Parameter and FLOP counting (dynconv_mmdet.analysis.complexity)."""
import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from torch.utils.flop_counter import FlopCounterMode

from dynconv_mmdet.analysis import (FlopCounter, backbone_complexity,
                                    count_parameters, dynamic_conv2d_flops,
                                    format_complexity_table, model_flops,
                                    padded_shape)
from dynconv_mmdet.models.layers import CondConv2d, DyConv2d, ODConv2d
from dynconv_mmdet.testing import build_example, family_examples

PINNED_PARAMS = {
    ('DynamicResNet', 'static'): 23_508_032,
    ('DynamicResNet', 'odconv1x'): 26_586_112,
    ('DynamicResNet', 'odconv4x'): 88_621_888,
    ('DynamicMobileNetV2', 'static'): 2_223_872,
    ('DynamicMobileNetV2', 'odconv1x'): 3_659_185,
    ('DynamicMobileNetV2', 'odconv4x'): 10_231_149,
}


def build_backbone(kind, preset):
    """On the meta device: shapes only, no memory, fast."""
    arch = dict(depth=50) if kind == 'DynamicResNet' else dict(
        widen_factor=1.0)
    with torch.device('meta'):
        return MODELS.build(
            dict(type=kind, preset=preset, _scope_='mmdet', **arch))


def count(module, shape):
    counter = FlopCounter(module)
    with torch.no_grad():
        module.eval()(torch.randn(*shape))
    counter.remove()
    return counter


def test_static_conv_and_linear_by_hand():
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=True)
    # output 5 x 6; bias not counted
    assert count(conv, (1, 8, 10, 12)).total == 16 * 8 * 9 * 5 * 6
    grouped = nn.Conv2d(8, 16, 3, padding=1, groups=4)
    assert count(grouped, (2, 8, 4, 4)).total == 2 * 16 * 2 * 9 * 16
    linear = nn.Linear(10, 7)
    assert count(linear, (3, 10)).total == 3 * 70


def test_condconv_by_hand():
    layer = CondConv2d(8, 16, 3, padding=1, num_experts=4)
    c = dynamic_conv2d_flops(layer, (1, 8, 10, 10))
    n = 16 * 8 * 9
    assert c == dict(
        pool=800,
        attention=8 * 4,
        aggregation=4 * n,
        conv=n * 100,
        total=800 + 32 + 4 * n + n * 100)
    assert count(layer, (1, 8, 10, 10)).total == c['total']


def test_dyconv_by_hand():
    layer = DyConv2d(16, 8, 1, kernel_num=4)  # hidden int(16 * 0.25) = 4
    c = dynamic_conv2d_flops(layer, (2, 16, 5, 5))
    n = 8 * 16
    assert c['pool'] == 2 * 16 * 25
    assert c['attention'] == 2 * (16 * 4 + 4 * 4)
    assert c['aggregation'] == 2 * 4 * n
    assert c['conv'] == 2 * n * 25


def test_odconv_by_hand_features_and_kernel_side():
    layer = ODConv2d(16, 32, 3, padding=1, kernel_num=4)  # A = 16
    att = 16 * 16 + 16 * (16 + 32 + 9 + 4)
    n = 32 * 16 * 9
    # small map: kernel (4608) > input map (1024), > output map (2048):
    # channel attentions go on the feature maps
    c = dynamic_conv2d_flops(layer, (1, 16, 8, 8))
    assert c == dict(
        pool=1024,
        attention=att,
        aggregation=4 * n + n + 1024 + 2048,
        conv=n * 64,
        total=1024 + att + 4 * n + n + 3072 + n * 64)
    # large map: both folded into the kernel (in x spatial: 16 * 9)
    c = dynamic_conv2d_flops(layer, (1, 16, 32, 32))
    assert c['aggregation'] == 4 * n + 16 * 9 + 2 * n
    # odconv 1x pointwise: no mixture, no spatial head, both attentions folded
    pw = ODConv2d(64, 32, 1, kernel_num=1)  # A = max(4, 16) = 16
    c = dynamic_conv2d_flops(pw, (1, 64, 20, 20))
    assert c['attention'] == 64 * 16 + 16 * (64 + 32)
    assert c['aggregation'] == 2 * 64 * 32
    # depthwise: no filter head, the output attention is absent
    dw = ODConv2d(32, 32, 3, padding=1, groups=32, kernel_num=1)
    c = dynamic_conv2d_flops(dw, (1, 32, 16, 16))
    assert c['attention'] == 32 * 16 + 16 * (32 + 9)
    assert c['aggregation'] == 32 * 9 + 32 * 9


#: every registered family that mixes its own kernels, variants included
LAYERS = sorted(family_examples(variants=True, own_kernels=True))
GEOMETRIES = {
    '3x3': dict(out_channels=16, kernel_size=3, padding=1),
    '1x1': dict(out_channels=8, kernel_size=1),
    '3x3_s2': dict(out_channels=12, kernel_size=3, stride=2, padding=1),
}


@pytest.mark.parametrize('geometry', sorted(GEOMETRIES))
@pytest.mark.parametrize('name', LAYERS)
@pytest.mark.parametrize('shape', [(1, 8, 8), (1, 32, 32), (2, 12, 12)])
def test_matrix_products_match_torch_flop_counter(name, geometry, shape):
    """torch's FlopCounterMode counts convolutions and matrix products (2 per
    multiply-add) of what really ran: our conv + MLP + kernel mixture."""
    layer = build_example(name, in_channels=8, **GEOMETRIES[geometry])
    shape = (shape[0], layer.in_channels, *shape[1:])
    c = dynamic_conv2d_flops(layer, shape)
    mixture = 0  # one matrix product when the kernels share the attentions
    if layer.num_kernels > 1 and not layer.per_kernel_attentions():
        mixture = shape[0] * layer.weight.numel()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        layer.eval()(torch.randn(*shape))
    assert fc.get_total_flops() == 2 * (c['conv'] + c['attention'] + mixture)


def test_static_resnet50_is_4_1_gmac_at_224():
    model = build_backbone('DynamicResNet', 'static')
    flops = model_flops(model, (1, 3, 224, 224))
    # 4.09 GMac with the 2 MMac classifier (torchvision / fvcore); the
    # detection backbone has no classifier. Tolerance 1%.
    assert flops['total'] == pytest.approx(4.09e9 - 2.048e6, rel=0.01)
    assert set(flops) == {'static conv', 'total'}


@pytest.mark.parametrize('kind', ['DynamicResNet', 'DynamicMobileNetV2'])
def test_backbone_counts(kind):
    static = build_backbone(kind, 'static')
    shape = (1, 3, 96, 128)
    base = model_flops(static, shape)
    for preset in ('static', 'condconv8x', 'dyconv4x', 'odconv1x', 'odconv4x'):
        model = build_backbone(kind, preset)
        if (kind, preset) in PINNED_PARAMS:
            assert count_parameters(model) == PINNED_PARAMS[(kind, preset)]
        flops = model_flops(model, shape)
        # the same convolutions, whether static or dynamic
        assert flops.get('static conv', 0) + flops.get('dynamic conv',
                                                       0) == base['total']
        overhead = sum(
            flops.get(f'dynamic {k}', 0)
            for k in ('pool', 'attention', 'aggregation'))
        assert (overhead > 0) == (preset != 'static')
        assert flops['total'] == base['total'] + overhead


def test_table_format():
    rows = backbone_complexity(['MobileNetV2 1.0'], ['static', 'odconv1x'],
                               (1, 3, 64, 96))
    assert [r['preset'] for r in rows] == ['static', 'odconv1x']
    assert rows[0]['extra_params'] == 0 and rows[0]['extra_flops'] == 0
    assert rows[1]['params'] == 3_659_185
    assert rows[1]['extra_params'] == 3_659_185 - 2_223_872
    table = format_complexity_table(rows, (1, 3, 64, 96)).splitlines()
    assert table[0].startswith('| backbone | preset | params |')
    assert '@ 96x64' in table[0]
    assert table[3].startswith('| MobileNetV2 1.0 | odconv1x | 3,659,185 |')


def test_input_is_padded_as_the_detectors_pad_it():
    # 1333-wide images reach the backbones as 1344 (pad_size_divisor=32);
    # CSPDarknet's Focus stem cannot take an odd width at all
    assert padded_shape((1, 3, 800, 1333)) == (1, 3, 800, 1344)
    assert padded_shape((1, 3, 64, 97), 1) == (1, 3, 64, 97)
    odd = backbone_complexity(['CSPDarknet-S'], ['static', 'odconv1x'],
                              (1, 3, 64, 97))
    even = backbone_complexity(['CSPDarknet-S'], ['static', 'odconv1x'],
                               (1, 3, 64, 128))
    assert [r['flops'] for r in odd] == [r['flops'] for r in even]
    assert odd[1]['extra_flops'] > 0
    with pytest.raises(RuntimeError):
        backbone_complexity(['CSPDarknet-S'], ['static'], (1, 3, 64, 97),
                            pad_size_divisor=1)
