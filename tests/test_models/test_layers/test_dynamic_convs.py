"""Drop-in conv behaviour of every registered family that gives an example
of itself (``example_kwargs``): adding a family adds no line here."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer, fuse_conv_bn
from mmengine.registry import MODELS, DefaultScope

from dynconv_mmdet.models.layers import (CondConv2d, DyConv2d,
                                         DynamicAttention, ODConv2d,
                                         get_temperatures, set_temperature)
from dynconv_mmdet.testing import naive_dynamic_conv
from dynconv_mmdet.testing.families import build_example, family_examples

#: name -> (class, constructor arguments of its example)
LAYERS = family_examples()
#: the families whose kernels are a mixture of their own ``weight``
MIXTURES = sorted(family_examples(own_kernels=True))
COUNTED = sorted(n for n, (cls, _) in LAYERS.items() if cls.num_kernels_arg)
TEMPERED = sorted(n for n, (cls, _) in LAYERS.items()
                  if cls.temperature_default is not None)


def build(name, **kwargs):
    return build_example(name, **kwargs)


def conv_cfg(name):
    return dict(type=name, **LAYERS[name][1])


# --------------------------------------------------------------------------
# Registry: the same layers from every scope; DCN stays mmcv's
@pytest.mark.parametrize('scope', [None, 'mmdet', 'mmpretrain'])
@pytest.mark.parametrize('name', sorted(LAYERS))
def test_build_from_every_scope(scope, name):
    import mmdet.registry  # noqa: F401
    import mmpretrain.registry  # noqa: F401
    ctx = DefaultScope.overwrite_default_scope(scope)
    with ctx:
        conv = build_conv_layer(conv_cfg(name), 8, 16, 3, padding=1)
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
# Numerics shared by all families
@pytest.mark.parametrize('name', MIXTURES)
def test_constant_attention_equals_scaled_conv(name):
    layer = build(
        name, in_channels=6, out_channels=10, kernel_size=3, padding=1)
    # one kernel: keep only the first
    layer.weight = nn.Parameter(layer.weight[:1].clone())
    c = 0.37
    x = torch.randn(2, 6, 7, 5)
    b = x.size(0)

    sizes = dict(kernel=1, spatial=9, in_channel=6, out_channel=10)
    produced = layer.produced_attentions()

    def constant(inp):
        return DynamicAttention(
            **{a: torch.full((b, sizes[a]), c)
               for a in produced})

    layer.compute_attention = constant
    scale = c**len(produced)
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
@pytest.mark.parametrize('name', MIXTURES)
def test_geometry_matches_naive_reference(name, geometry):
    layer = build(name, in_channels=8, out_channels=12, **geometry).train()
    x = torch.randn(3, 8, 11, 9)
    attn = layer.compute_attention(x)
    layer.compute_attention = lambda inp: attn
    expected = naive_dynamic_conv(x, layer)
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('name', MIXTURES)
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
    assert all(p.grad is not None for p in layer.parameters()
               if p.requires_grad)


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_inside_conv_module(name):
    module = ConvModule(
        8, 16, 3, padding=1, conv_cfg=conv_cfg(name), norm_cfg=dict(type='BN'))
    assert module.in_channels == 8 and module.out_channels == 16
    assert module.kernel_size == (3, 3) and module.groups == 1
    assert not module.with_bias and module.conv.bias is None
    module.init_weights()
    assert module(torch.randn(2, 8, 5, 5)).shape == (2, 16, 5, 5)
    no_norm = ConvModule(8, 16, 3, conv_cfg=conv_cfg(name))
    assert no_norm.conv.bias is not None  # ConvModule asks for the bias


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_single_image_training(name):
    layer = build(
        name, in_channels=8, out_channels=8, kernel_size=3, padding=1).train()
    x = torch.randn(1, 8, 6, 6, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


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
            conv_cfg=conv_cfg(name),
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
# One vocabulary: every family reads its kernel count back as num_kernels
@pytest.mark.parametrize('name', COUNTED)
def test_kernel_count_is_num_kernels(name):
    cls, example = LAYERS[name]
    layer = cls(8, 16, 3, **{**example, cls.num_kernels_arg: 5})
    assert layer.num_kernels == 5
    if name in MIXTURES:
        assert layer.weight.size(0) == 5
    assert 'num_kernels=5' in repr(layer)
    for alias in ('num_experts', 'kernel_num'):
        assert not hasattr(layer, alias)


# --------------------------------------------------------------------------
# Bad input
@pytest.mark.parametrize('name', COUNTED)
def test_bad_arguments_are_clear(name):
    cls, example = LAYERS[name]
    with pytest.raises(ValueError, match=f'{name}.*divisible by groups'):
        cls(6, 8, 3, groups=4, **example)
    count_arg = cls.num_kernels_arg  # each release's own argument name
    with pytest.raises(ValueError, match=f'{name}.*{count_arg}'):
        cls(4, 4, 3, **{**example, count_arg: 0})
    layer = cls(4, 4, 3, **example)
    with pytest.raises(ValueError, match=rf'{name}.*\[N, 4, H, W\]'):
        layer(torch.randn(2, 5, 6, 6))
    with pytest.raises(ValueError, match=name):
        layer(torch.randn(4, 6, 6))


@pytest.mark.parametrize('name', TEMPERED)
def test_bad_temperature(name):
    cls, example = LAYERS[name]
    low, high = cls.temperature_range
    bad = low if not cls.temperature_low_inclusive else high + 1
    with pytest.raises(ValueError, match=f'{name}.*temperature'):
        cls(4, 4, 3, temperature=bad, **example)
    layer = cls(4, 4, 3, **example)
    with pytest.raises(ValueError, match='temperature'):
        set_temperature(layer, low - 1.0)
