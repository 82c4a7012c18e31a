"""ODConv2d: the released module's numbers, heads and attention norm."""
import itertools
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dynconv_mmdet.models.layers import ODConv2d
from dynconv_mmdet.models.layers.odconv_attention import ODCONV_ATTENTIONS
from dynconv_mmdet.testing import rel_err

DATA_DIR = osp.join(osp.dirname(__file__), '..', '..', 'data')

CASES = json.load(open(osp.join(DATA_DIR, 'odconv', 'cases.json')))


@pytest.mark.parametrize('case', sorted(CASES))
def test_odconv_matches_released_vectors(case):
    args = dict(CASES[case])
    data = np.load(osp.join(DATA_DIR, 'odconv', f'{case}.npz'))
    t = {k: torch.from_numpy(data[k]) for k in data.files}
    layer = ODConv2d(
        args.pop('in_planes'),
        args.pop('out_planes'),
        args.pop('kernel_size'),
        stride=args.pop('stride', 1),
        padding=args.pop('padding', 0),
        dilation=args.pop('dilation', 1),
        groups=args.pop('groups', 1),
        kernel_num=args.pop('kernel_num'),
        temperature=args.pop('temperature'))
    assert layer.temperature == float(t['meta.temperature'])
    state = {
        k[len('state_dict.'):]: v
        for k, v in t.items() if k.startswith('state_dict.')
    }
    # official key names and shapes load unchanged, nothing left over
    layer.load_state_dict(state, strict=True)
    layer.train()
    x = t['x'].clone().requires_grad_(True)
    out = layer(x)
    (out * t['g']).sum().backward()
    assert rel_err(out, t['out_train']) < 1e-5
    assert rel_err(x.grad, t['grad_x_train']) < 1e-5
    assert rel_err(layer.weight.grad, t['grad_weight_train']) < 1e-5
    layer.eval()
    with torch.no_grad():
        assert rel_err(layer(t['x']), t['out_eval']) < 1e-5


def test_odconv_heads_follow_released_rules():
    dw = ODConv2d(32, 32, 3, padding=1, groups=32, kernel_num=4)
    assert dw.attention.filter_fc is None  # depthwise: no filter attention
    pw = ODConv2d(16, 48, 1, kernel_num=1)
    assert pw.attention.spatial_fc is None and pw.attention.kernel_fc is None
    wide = ODConv2d(320, 1280, 1, kernel_num=4)
    assert wide.attention.hidden_channels == 20  # max(int(320/16), 16)
    assert tuple(wide.weight.shape) == (4, 1280, 320, 1, 1)
    for attn in pw.compute_attention(torch.randn(2, 16, 5, 5)):
        assert attn is None or isinstance(attn, torch.Tensor)


def test_odconv_single_image_uses_running_statistics():
    layer = ODConv2d(8, 8, 3, padding=1, kernel_num=2)
    bn = layer.attention.bn
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    before = (bn.running_mean.clone(), bn.running_var.clone())
    x = torch.randn(1, 8, 6, 6)
    layer.train()
    train_out = layer(x)
    torch.testing.assert_close(bn.running_mean, before[0])
    torch.testing.assert_close(bn.running_var, before[1])
    layer.eval()
    torch.testing.assert_close(train_out, layer(x))
    # two images use batch statistics and update the running estimates
    layer.train()
    layer(torch.randn(2, 8, 6, 6))
    assert not torch.equal(bn.running_mean, before[0])


def test_odconv_norm_cfg_is_honoured():
    gn = ODConv2d(32, 32, 3, padding=1, norm_cfg=dict(type='GN', num_groups=4))
    assert isinstance(gn.attention.bn, nn.GroupNorm)
    none = ODConv2d(32, 32, 3, padding=1, norm_cfg=None)
    assert none.attention.bn is None and none.attention.fc.bias is not None
    for layer in (gn, none):
        assert layer(torch.randn(1, 32, 4, 4)).shape == (1, 32, 4, 4)


# --------------------------------------------------------------------------
# Ablation switches (paper Tables 7, 11, 12): attentions, spatial activation,
# shared / per-kernel attentions
def test_default_switches_are_the_release():
    """Explicit defaults build the released module: the official keys and
    shapes, and the same numbers as the official vectors' layer."""
    args = dict(CASES['k3_s1_K4'])
    data = np.load(osp.join(DATA_DIR, 'odconv', 'k3_s1_K4.npz'))
    state = {
        k[len('state_dict.'):]: torch.from_numpy(data[k])
        for k in data.files if k.startswith('state_dict.')
    }
    layer = ODConv2d(
        args['in_planes'],
        args['out_planes'],
        3,
        padding=1,
        kernel_num=4,
        attentions=ODCONV_ATTENTIONS,
        spatial_activation='sigmoid',
        shared=True)
    layer.load_state_dict(state, strict=True)
    x = torch.from_numpy(data['x'])
    layer.train()
    assert rel_err(layer(x), torch.from_numpy(data['out_train'])) < 1e-5
    layer.eval()
    with torch.no_grad():
        assert rel_err(layer(x), torch.from_numpy(data['out_eval'])) < 1e-5


SWITCH_GEOMETRIES = {
    '3x3':
    dict(in_channels=8, out_channels=12, kernel_size=3, padding=1),
    '3x3_g2':
    dict(in_channels=8, out_channels=12, kernel_size=3, padding=1, groups=2),
    'dw':
    dict(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=8),
    '1x1':
    dict(in_channels=8, out_channels=12, kernel_size=1),
}
SUBSETS = [
    names for r in range(1, 5)
    for names in itertools.combinations(ODCONV_ATTENTIONS, r)
]


def expected_param_count(geo, kernel_num, attentions, shared, norm=True):
    """Parameter count from the paper's construction (heads of width
    ``K * n`` when unshared), written independently of the module."""
    cin, cout = geo['in_channels'], geo['out_channels']
    groups = geo.get('groups', 1)
    k = geo['kernel_size']
    kk = k * k
    per_kernel = 1 if shared else kernel_num
    hidden = max(int(cin / 16), 16)
    widths = {
        'in_channel': cin * per_kernel,
        'out_channel': None if cin == groups == cout else cout * per_kernel,
        'spatial': None if kk == 1 else kk * per_kernel,
        'kernel': None if kernel_num == 1 else kernel_num,
    }
    heads = [widths[n] for n in attentions if widths[n] is not None]
    total = kernel_num * cout * cin // groups * kk
    if heads:
        total += cin * hidden + (2 * hidden if norm else hidden)
        total += sum((hidden + 1) * w for w in heads)
    return total


@pytest.mark.parametrize('shared', [True, False])
@pytest.mark.parametrize('attentions', SUBSETS, ids='+'.join)
@pytest.mark.parametrize('geo', sorted(SWITCH_GEOMETRIES))
def test_switches_param_count_and_shapes(geo, attentions, shared):
    kernel_num = 3 if 'kernel' in attentions else 1
    geometry = SWITCH_GEOMETRIES[geo]
    layer = ODConv2d(
        **geometry,
        kernel_num=kernel_num,
        attentions=attentions,
        shared=shared)
    assert sum(p.numel() for p in layer.parameters()) == \
        expected_param_count(geometry, kernel_num, attentions, shared)
    applies = dict(
        in_channel=True,
        out_channel=geo != 'dw',
        spatial=geo != '1x1',
        kernel=kernel_num > 1)
    produced = tuple(n for n in ODCONV_ATTENTIONS
                     if n in attentions and applies[n])
    assert layer.produced_attentions() == produced
    per_kernel = () if shared or kernel_num == 1 else tuple(n for n in produced
                                                            if n != 'kernel')
    assert layer.per_kernel_attentions() == per_kernel
    x = torch.randn(2, 8, 6, 5)
    attn = layer.compute_attention(x)
    widths = dict(
        in_channel=8,
        out_channel=geometry['out_channels'],
        spatial=geometry['kernel_size']**2,
        kernel=kernel_num)
    for name in ODCONV_ATTENTIONS:
        value = getattr(attn, name)
        if name not in produced:
            assert value is None
        elif name in per_kernel:
            assert value.shape == (2, kernel_num, widths[name])
        else:
            assert value.shape == (2, widths[name])
    out = layer(x)
    assert out.shape == (2, geometry['out_channels'], 6, 5)


def naive_odconv(layer: ODConv2d, x: torch.Tensor) -> torch.Tensor:
    """Per-sample, per-kernel loop of the paper's eq. 3 with attentions that
    may differ per kernel: ``conv(x_b, sum_i a_w a_f a_c a_s W_i)``."""
    attn = layer.compute_attention(x)
    kernel_num = layer.weight.size(0)
    kh, kw = layer.kernel_size
    groups = layer.groups
    cout, cin_g = layer.weight.shape[1:3]

    def of(a, b, i):
        if a is None:
            return None
        return a[b, i] if a.dim() == 3 else a[b]

    outs = []
    for b in range(x.size(0)):
        w = 0
        for i in range(kernel_num):
            wi = layer.weight[i]
            if attn.kernel is not None:
                wi = wi * attn.kernel[b, i]
            if of(attn.out_channel, b, i) is not None:
                wi = wi * of(attn.out_channel, b, i).view(cout, 1, 1, 1)
            if of(attn.in_channel, b, i) is not None:
                a_in = of(attn.in_channel, b, i).view(groups, 1, cin_g)
                a_in = a_in.expand(groups, cout // groups, cin_g)
                wi = wi * a_in.reshape(cout, cin_g, 1, 1)
            if of(attn.spatial, b, i) is not None:
                wi = wi * of(attn.spatial, b, i).view(1, 1, kh, kw)
            w = w + wi
        outs.append(
            F.conv2d(x[b:b + 1], w, layer.bias, layer.stride, layer.padding,
                     layer.dilation, groups))
    return torch.cat(outs)


@pytest.mark.parametrize('spatial_activation', ['sigmoid', 'softmax'])
@pytest.mark.parametrize('geo', sorted(SWITCH_GEOMETRIES))
def test_unshared_matches_naive_reference(geo, spatial_activation):
    layer = ODConv2d(
        **SWITCH_GEOMETRIES[geo],
        kernel_num=3,
        shared=False,
        spatial_activation=spatial_activation,
        temperature=2.0).train()
    x = torch.randn(3, 8, 7, 6, requires_grad=True)
    out = layer(x)
    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum(), [x, layer.weight])
    ref = naive_odconv(layer, x)
    ref_grads = torch.autograd.grad((ref * g).sum(), [x, layer.weight])
    assert rel_err(out, ref) < 1e-5
    for mine, theirs in zip(grads, ref_grads):
        assert rel_err(mine, theirs) < 1e-5
    layer.eval()
    with torch.no_grad():
        ref_eval = naive_odconv(layer, x)
        assert rel_err(layer(x), ref_eval) < 1e-5
        assert rel_err(layer(x[1:2]), ref_eval[1:2]) < 1e-5


@pytest.mark.parametrize('attentions', SUBSETS, ids='+'.join)
def test_attention_subsets_match_naive_reference(attentions):
    kernel_num = 2 if 'kernel' in attentions else 1
    layer = ODConv2d(
        **SWITCH_GEOMETRIES['3x3'],
        kernel_num=kernel_num,
        attentions=attentions).train()
    x = torch.randn(2, 8, 5, 5)
    assert rel_err(layer(x), naive_odconv(layer, x)) < 1e-5


def test_softmax_spatial_attention():
    layer = ODConv2d(8, 12, 3, padding=1, spatial_activation='softmax')
    layer.temperature = 3.0
    x = torch.randn(4, 8, 6, 6)
    spatial = layer.compute_attention(x).spatial
    torch.testing.assert_close(spatial.sum(1), torch.ones(4))
    att = layer.attention
    z = F.relu(att.bn(att.fc(x.mean((2, 3), keepdim=True)))).flatten(1)
    logits = F.linear(z, att.spatial_fc.weight.flatten(1), att.spatial_fc.bias)
    torch.testing.assert_close(spatial, torch.softmax(logits / 3.0, 1))
    unshared = ODConv2d(
        8,
        12,
        3,
        padding=1,
        kernel_num=2,
        shared=False,
        spatial_activation='softmax')
    per_kernel = unshared.compute_attention(x).spatial
    assert per_kernel.shape == (4, 2, 9)
    torch.testing.assert_close(per_kernel.sum(2), torch.ones(4, 2))


def test_no_applicable_attention_is_a_static_conv():
    """A 1x1 conv asked for the spatial attention only has no attention at
    all (no trunk, nothing unused in training) and is the static conv."""
    layer = ODConv2d(8, 12, 1, attentions=('spatial', ))
    assert layer.produced_attentions() == ()
    assert not list(layer.attention.parameters())
    x = torch.randn(2, 8, 5, 5, requires_grad=True)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.weight[0]))
    assert layer.flops(x.shape) == dict(
        pool=0, attention=0, aggregation=0, conv=2 * 12 * 8 * 25)


def test_unshared_flops_follow_the_heads():
    layer = ODConv2d(16, 32, 3, padding=1, kernel_num=4, shared=False)
    hidden = 16
    assert layer.attention_flops(
    ) == hidden * 16 + hidden * 4 * (16 + 32 + 9) + hidden * 4
    numel = 32 * 16 * 9
    # per kernel: output side (a_w * a_f) and input side (a_c * a_s)
    # combined, both multiplied into the kernel, the kernels summed
    agg = 4 * (2 * numel + 16 * 9 + 32) + 3 * numel
    flops = layer.flops((2, 16, 10, 10))
    assert flops['aggregation'] == 2 * agg
    shared = ODConv2d(16, 32, 3, padding=1, kernel_num=4)
    assert shared.attention_flops() == hidden * (16 + 16 + 32 + 9 + 4)


@pytest.mark.parametrize(
    'kwargs, match',
    [(dict(attentions=('spatial', 'color')), r'unknown attentions \['
      "'color'"), (dict(attentions='spatial'), 'list of attention names'),
     (dict(attentions=('spatial', 'spatial')), 'twice'),
     (dict(kernel_num=4, attentions=('spatial', )), "needs the 'kernel'"),
     (dict(spatial_activation='relu'), 'spatial_activation must be one of'),
     (dict(shared='no'), 'shared must be True')])
def test_bad_switches_are_clear(kwargs, match):
    with pytest.raises(ValueError, match='ODConv2d: .*' + match):
        ODConv2d(8, 8, 3, **kwargs)


def test_switches_through_conv_cfg_in_a_backbone():
    from mmdet.registry import MODELS
    backbone = MODELS.build(
        dict(
            type='DynamicMobileNetV2',
            widen_factor=0.5,
            out_indices=(7, ),
            dynamic=dict(
                conv_cfg=dict(
                    type='ODConv2d',
                    kernel_num=2,
                    shared=False,
                    spatial_activation='softmax'),
                stages=(False, ) * 6 + (True, ))))
    convs = [m for m in backbone.modules() if isinstance(m, ODConv2d)]
    assert convs and all(not c.shared for c in convs)
    assert all(c.spatial_activation == 'softmax' for c in convs)
    backbone.train()
    out = backbone(torch.randn(2, 3, 32, 32))[0]
    out.sum().backward()
    assert all(p.grad is not None for c in convs for p in c.parameters())
