"""Behaviour of CondConv2d, DyConv2d and ODConv2d as drop-in conv layers."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import DATA_DIR
from mmcv.cnn import ConvModule, build_conv_layer, fuse_conv_bn
from mmengine.registry import MODELS, DefaultScope

from dynconv_mmdet.models.layers import (CondConv2d, DyConv2d,
                                         DynamicAttention, ODConv2d,
                                         batch_folded_conv2d, dynamic_conv2d,
                                         get_temperatures, set_temperature)

LAYERS = {
    'CondConv2d': dict(num_experts=3),
    'DyConv2d': dict(kernel_num=3),
    'ODConv2d': dict(kernel_num=3),
}


def build(name, *args, **kwargs):
    return MODELS.build(dict(type=name, **LAYERS[name], **kwargs)) \
        if not args else MODELS.get(name)(*args, **LAYERS[name], **kwargs)


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def naive_dynamic_conv(x, layer):
    """Independent reference: loop over samples and kernels."""
    attn = layer.compute_attention(x)
    outs = []
    for b in range(x.size(0)):
        k = layer.weight.size(0)
        mix = [1.0] * k if attn.kernel is None else attn.kernel[b]
        w = sum(mix[i] * layer.weight[i] for i in range(k))
        kh, kw = layer.kernel_size
        if attn.spatial is not None:
            w = w * attn.spatial[b].view(1, 1, kh, kw)
        xb = x[b:b + 1]
        if attn.in_channel is not None:
            xb = xb * attn.in_channel[b].view(1, -1, 1, 1)
        y = F.conv2d(xb, w, None, layer.stride, layer.padding, layer.dilation,
                     layer.groups)
        if attn.out_channel is not None:
            y = y * attn.out_channel[b].view(1, -1, 1, 1)
        if layer.bias is not None:
            y = y + layer.bias.view(1, -1, 1, 1)
        outs.append(y)
    return torch.cat(outs)


# --------------------------------------------------------------------------
# ODConv2d reproduces the released module
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


# --------------------------------------------------------------------------
# Registry: the same layers from every scope; DCN stays mmcv's
@pytest.mark.parametrize('scope', [None, 'mmdet', 'mmpretrain'])
@pytest.mark.parametrize('name', sorted(LAYERS))
def test_build_from_every_scope(scope, name):
    import mmdet.registry  # noqa: F401
    import mmpretrain.registry  # noqa: F401
    ctx = DefaultScope.overwrite_default_scope(scope)
    with ctx:
        conv = build_conv_layer(
            dict(type=name, **LAYERS[name]), 8, 16, 3, padding=1)
    assert type(conv).__name__ == name
    assert conv(torch.randn(2, 8, 6, 6)).shape == (2, 16, 6, 6)


@pytest.mark.parametrize('scope', [None, 'mmdet', 'mmpretrain'])
def test_dcn_is_mmcv_through_conv_cfg(scope):
    from mmcv.ops import DeformConv2dPack, ModulatedDeformConv2dPack
    with DefaultScope.overwrite_default_scope(scope):
        dcn = build_conv_layer(dict(type='DCN'), 8, 8, 3, padding=1)
        dcnv2 = build_conv_layer(dict(type='DCNv2'), 8, 8, 3, padding=1)
    assert isinstance(dcn, DeformConv2dPack)
    assert isinstance(dcnv2, ModulatedDeformConv2dPack)
    assert dcn(torch.randn(1, 8, 5, 5)).shape == (1, 8, 5, 5)
    assert MODELS.get('DCN').__module__.startswith('mmcv.ops')


# --------------------------------------------------------------------------
# Numerics shared by all three layers
@pytest.mark.parametrize('name', sorted(LAYERS))
def test_constant_attention_equals_scaled_conv(name):
    layer = build(
        name, in_channels=6, out_channels=10, kernel_size=3, padding=1)
    # one kernel: keep only the first
    layer.weight = nn.Parameter(layer.weight[:1].clone())
    c = 0.37
    x = torch.randn(2, 6, 7, 5)
    b = x.size(0)

    def constant(inp):
        kk = layer.kernel_size[0] * layer.kernel_size[1]
        return DynamicAttention(
            kernel=torch.full((b, 1), c),
            spatial=torch.full((b, kk), c) if name == 'ODConv2d' else None,
            in_channel=torch.full((b, 6), c) if name == 'ODConv2d' else None,
            out_channel=torch.full((b, 10), c) if name == 'ODConv2d' else None)

    layer.compute_attention = constant
    scale = c**4 if name == 'ODConv2d' else c
    expected = F.conv2d(x, layer.weight[0], padding=1) * scale
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_samples_do_not_affect_each_other(name):
    layer = build(
        name, in_channels=8, out_channels=8, kernel_size=3, padding=1).eval()
    x = torch.randn(4, 8, 9, 7)
    with torch.no_grad():
        batched = layer(x)
        alone = torch.cat([layer(x[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_gradcheck_float64(name):
    layer = build(
        name,
        in_channels=4,
        out_channels=4,
        kernel_size=3,
        padding=1,
        groups=2,
        bias=True).double().eval()
    x = torch.randn(2, 4, 4, 3, dtype=torch.double, requires_grad=True)
    params = [p for p in layer.parameters() if p.requires_grad]
    assert torch.autograd.gradcheck(
        lambda inp, *ps: layer(inp), (x, *params),
        eps=1e-6,
        atol=1e-5,
        fast_mode=True)


GEOMETRIES = [
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, padding=2, dilation=2),
    dict(kernel_size=(3, 1), padding=(1, 0)),
    dict(kernel_size=1),
    dict(kernel_size=1, stride=2),
    dict(kernel_size=3, padding=1, groups=4),
    dict(kernel_size=3, padding=1, bias=True),
    dict(kernel_size=5, padding=2),
]


@pytest.mark.parametrize('geometry', GEOMETRIES, ids=str)
@pytest.mark.parametrize('name', sorted(LAYERS))
def test_geometry_matches_naive_reference(name, geometry):
    layer = build(name, in_channels=8, out_channels=12, **geometry).train()
    x = torch.randn(3, 8, 11, 9)
    attn = layer.compute_attention(x)
    layer.compute_attention = lambda inp: attn
    expected = naive_dynamic_conv(x, layer)
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_depthwise(name):
    layer = build(
        name,
        in_channels=8,
        out_channels=8,
        kernel_size=3,
        padding=1,
        groups=8)
    x = torch.randn(2, 8, 6, 6)
    attn = layer.compute_attention(x)
    layer.compute_attention = lambda inp: attn
    torch.testing.assert_close(
        layer(x), naive_dynamic_conv(x, layer), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_bias_is_added_last(name):
    layer = build(
        name,
        in_channels=4,
        out_channels=6,
        kernel_size=3,
        padding=1,
        bias=True).eval()
    nn.init.normal_(layer.bias)
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        with_bias = layer(x)
        bias = layer.bias.clone()
        layer.bias.zero_()
        without = layer(x)
    torch.testing.assert_close(with_bias - without,
                               bias.view(1, -1, 1, 1).expand_as(without))


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_memory_formats(name):
    layer = build(
        name, in_channels=8, out_channels=8, kernel_size=3, padding=1).eval()
    x = torch.randn(2, 8, 10, 12)
    with torch.no_grad():
        ref = layer(x)
        strided = layer(torch.randn(2, 12, 10, 8).permute(0, 3, 2, 1))
        assert strided.shape == (2, 8, 10, 12)
        torch.testing.assert_close(
            layer(x.transpose(2, 3).contiguous().transpose(2, 3)), ref)
        torch.testing.assert_close(
            layer(x.to(memory_format=torch.channels_last)),
            ref,
            rtol=1e-5,
            atol=1e-6)


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_bf16_autocast_cpu(name):
    layer = build(
        name, in_channels=8, out_channels=8, kernel_size=3, padding=1).train()
    x = torch.randn(2, 8, 6, 6)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x)
    assert out.shape == (2, 8, 6, 6) and torch.isfinite(out).all()
    out.float().sum().backward()
    assert layer.weight.grad is not None


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_inside_conv_module(name):
    module = ConvModule(
        8,
        16,
        3,
        padding=1,
        conv_cfg=dict(type=name, **LAYERS[name]),
        norm_cfg=dict(type='BN'))
    assert module.in_channels == 8 and module.out_channels == 16
    assert module.kernel_size == (3, 3) and module.groups == 1
    assert not module.with_bias and module.conv.bias is None
    module.init_weights()
    assert module(torch.randn(2, 8, 5, 5)).shape == (2, 16, 5, 5)
    no_norm = ConvModule(8, 16, 3, conv_cfg=dict(type=name, **LAYERS[name]))
    assert no_norm.conv.bias is not None  # ConvModule asks for the bias


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_single_image_training(name):
    layer = build(
        name, in_channels=8, out_channels=8, kernel_size=3, padding=1).train()
    x = torch.randn(1, 8, 6, 6, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


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
# Temperature
def test_temperature_setting_and_not_saved():
    model = nn.Sequential(
        ODConv2d(4, 4, 3, padding=1, kernel_num=4, temperature=30.0),
        DyConv2d(4, 4, 3, padding=1), CondConv2d(4, 4, 1))
    assert get_temperatures(model) == {'0': 30.0, '1': 1.0}
    assert set_temperature(model, 2.5) == 2
    assert set(get_temperatures(model).values()) == {2.5}
    assert not any('temperature' in k for k in model.state_dict())
    x = torch.randn(2, 4, 5, 5)
    layer = model[0].eval()
    set_temperature(layer, 1.0)
    a1 = layer.compute_attention(x).kernel
    set_temperature(layer, 30.0)
    a30 = layer.compute_attention(x).kernel
    # a higher temperature flattens the softmax towards uniform
    assert (a30 - 0.25).abs().max() < (a1 - 0.25).abs().max()


# --------------------------------------------------------------------------
# Drop-in behaviour with mmcv tools
@pytest.mark.parametrize('name', sorted(LAYERS))
def test_fuse_conv_bn_keeps_eval_output(name):
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8),
        build(name, in_channels=8, out_channels=8, kernel_size=3, padding=1),
        nn.BatchNorm2d(8),
        ConvModule(
            8,
            8,
            3,
            padding=1,
            conv_cfg=dict(type=name, **LAYERS[name]),
            norm_cfg=dict(type='BN')))
    model.train()
    for _ in range(3):
        model(torch.randn(4, 3, 8, 8))
    model.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        before = model(x)
        after = fuse_conv_bn(model)(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------
# Bad input
@pytest.mark.parametrize('name', sorted(LAYERS))
def test_bad_arguments_are_clear(name):
    cls = MODELS.get(name)
    with pytest.raises(ValueError, match=f'{name}.*divisible by groups'):
        cls(6, 8, 3, groups=4)
    count_arg = 'num_experts' if name == 'CondConv2d' else 'kernel_num'
    with pytest.raises(ValueError, match=f'{name}.*{count_arg}'):
        cls(4, 4, 3, **{count_arg: 0})
    layer = cls(4, 4, 3)
    with pytest.raises(ValueError, match=rf'{name}.*\[N, 4, H, W\]'):
        layer(torch.randn(2, 5, 6, 6))
    with pytest.raises(ValueError, match=name):
        layer(torch.randn(4, 6, 6))


@pytest.mark.parametrize('name', ['DyConv2d', 'ODConv2d'])
def test_bad_temperature(name):
    with pytest.raises(ValueError, match=f'{name}.*temperature'):
        MODELS.get(name)(4, 4, 3, temperature=0)
    layer = MODELS.get(name)(4, 4, 3)
    with pytest.raises(ValueError, match='temperature'):
        set_temperature(layer, -1.0)


# --------------------------------------------------------------------------
# The efficient formulation equals the released one
@pytest.mark.parametrize('batch', [1, 3])
@pytest.mark.parametrize('spatial', [True, False])
@pytest.mark.parametrize('size', [2, 12])
@pytest.mark.parametrize('k', [1, 3])
def test_dynamic_conv2d_equals_batch_folded(batch, spatial, size, k):
    # batch 1: the library conv; batch 3: the batched matmul (k=1) or the
    # batch folded into the groups (k=3).
    groups = 2 if k == 3 else 1
    weight = torch.randn(4, 16, 8 // groups, k, k, requires_grad=True)
    x = torch.randn(batch, 8, size, size, requires_grad=True)
    attn = dict(
        kernel_attn=torch.softmax(torch.randn(batch, 4), 1),
        spatial_attn=torch.rand(batch, k * k) if spatial else None,
        in_attn=torch.rand(batch, 8),
        out_attn=torch.rand(batch, 16))
    geo = dict(padding=(k // 2, k // 2), groups=groups)
    ours = dynamic_conv2d(x, weight, **geo, **attn)
    ref = batch_folded_conv2d(x, weight, **geo, **attn)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(ref)
    gx, gw = torch.autograd.grad((ours * g).sum(), (x, weight))
    rx, rw = torch.autograd.grad((ref * g).sum(), (x, weight))
    torch.testing.assert_close(gx, rx, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gw, rw, rtol=1e-4, atol=1e-4)
