"""Dynamic ResNet / MobileNetV2: layouts, pinned parameter counts, freezing."""
import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from dynconv_mmdet.models.layers import (CondConv2d, DyConv2d, DynamicConv2d,
                                         ODConv2d, get_temperatures)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def resnet(preset, depth=50, **kwargs):
    return MODELS.build(
        dict(type='DynamicResNet', depth=depth, preset=preset, **kwargs))


def mbv2(preset, widen_factor=1.0, **kwargs):
    return MODELS.build(
        dict(
            type='DynamicMobileNetV2',
            widen_factor=widen_factor,
            preset=preset,
            **kwargs))


# Published counts (FACTS.md): detection backbones, no classifier.
@pytest.mark.parametrize(
    'preset,expected',
    [
        ('static', 23_508_032),
        ('odconv1x', 26_586_112),
        ('odconv4x', 88_621_888),
        ('fdconv', 27_155_152),  # 23,508,032 + 3,647,120 (FDConv release)
    ])
def test_resnet50_parameter_counts(preset, expected):
    assert n_params(resnet(preset)) == expected


@pytest.mark.parametrize('preset,extra_m', [('condconv8x', 90.0),
                                            ('dyconv4x', 75.3)])
def test_resnet50_extra_parameters(preset, extra_m):
    extra = n_params(resnet(preset)) - 23_508_032
    assert round(extra / 1e6, 1) == extra_m


@pytest.mark.parametrize('preset,expected', [
    ('static', 2_223_872),
    ('odconv1x', 3_659_185),
    ('odconv4x', 10_231_149),
])
def test_mobilenet_v2_parameter_counts(preset, expected):
    assert n_params(mbv2(preset)) == expected


def _dynamic_names(model):
    return {
        n
        for n, m in model.named_modules() if isinstance(m, DynamicConv2d)
    }


def test_resnet_presets_place_the_papers_layers():
    cond = resnet('condconv8x', depth=50)
    names = _dynamic_names(cond)
    assert names == {
        f'layer4.{b}.conv{c}'
        for b in range(3)
        for c in (1, 2, 3)
    }
    assert all(isinstance(cond.get_submodule(n), CondConv2d) for n in names)
    dy = resnet('dyconv4x', depth=50)
    names = _dynamic_names(dy)
    assert 'conv1' not in names
    assert {f'layer{i}.0.downsample.0' for i in range(1, 5)} <= names
    assert len(names) == 16 * 3 + 4
    od = resnet('odconv4x', depth=50)
    names = _dynamic_names(od)
    assert len(names) == 16 * 3 and not any('downsample' in n for n in names)
    assert all(od.get_submodule(n).num_kernels == 4 for n in names)


def test_basic_block_and_custom_layout():
    model = resnet(
        'static',
        depth=18,
        dynamic=dict(
            conv_cfg=dict(type='DyConv2d', kernel_num=2),
            stages=(False, True, False, True),
            block_convs=('conv2', ),
            downsample=True,
            stem=True))
    names = _dynamic_names(model)
    assert names == {
        'conv1', 'layer2.0.conv2', 'layer2.1.conv2', 'layer4.0.conv2',
        'layer4.1.conv2', 'layer2.0.downsample.0', 'layer4.0.downsample.0'
    }
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 16, 16), (2, 128, 8, 8),
                                              (2, 256, 4, 4), (2, 512, 2, 2)]


def test_resnet_bad_layouts():
    with pytest.raises(ValueError, match='unknown preset'):
        resnet('odconv8x', depth=18)
    with pytest.raises(ValueError, match='unknown keys'):
        resnet('static', depth=18, dynamic=dict(convs=('conv1', )))
    with pytest.raises(ValueError, match='has no .conv3'):
        resnet('odconv1x', depth=18, dynamic=dict(block_convs=('conv3', )))
    with pytest.raises(ValueError, match='DCN'):
        resnet(
            'odconv1x',
            depth=50,
            dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
            stage_with_dcn=(False, True, True, True))
    with pytest.raises(
            KeyError,
            match="'NoSuchConv'.*registered conv types:.*"
            'CondConv2d.*DCNv2.*DyConv2d.*ODConv2d'):
        resnet(
            'static',
            depth=18,
            dynamic=dict(
                conv_cfg=dict(type='NoSuchConv'), stages=(True, ) * 4))


def test_resnet_dcn_stays_mmcv():
    from mmcv.ops import DeformConv2dPack
    model = resnet(
        'static',
        depth=50,
        dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True))
    assert isinstance(model.layer2[0].conv2, DeformConv2dPack)
    assert not _dynamic_names(model)


@pytest.mark.parametrize('preset', ['condconv8x', 'dyconv4x', 'odconv1x'])
def test_mobilenet_v2_outputs_feed_fpn(preset):
    model = mbv2(preset, widen_factor=1.0)
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [24, 32, 96, 1280]
    assert not isinstance(model.conv1.conv, DynamicConv2d)
    assert isinstance(model.conv2.conv, DynamicConv2d)


def test_frozen_stages_and_norm_eval_cover_attention():
    model = resnet('odconv1x', depth=18, frozen_stages=2, norm_eval=True)
    model.train()
    for name, p in model.named_parameters():
        frozen = name.startswith(('conv1', 'bn1', 'layer1', 'layer2'))
        assert p.requires_grad != frozen, name
    attn_bn = model.layer3[0].conv1.attention.bn
    assert isinstance(attn_bn, _BatchNorm) and not attn_bn.training
    assert not model.layer1[0].conv1.attention.training
    mb = mbv2('odconv1x', frozen_stages=1, norm_eval=True)
    mb.train()
    assert not any(p.requires_grad for p in mb.layer1.parameters())
    assert all(not m.training for m in mb.modules()
               if isinstance(m, _BatchNorm))


def test_norm_cfg_reaches_attention():
    model = resnet(
        'odconv1x', depth=18, norm_cfg=dict(type='SyncBN', requires_grad=True))
    bn = model.layer1[0].conv1.attention.bn
    assert isinstance(bn, nn.SyncBatchNorm)
    # a GN backbone keeps BN in the attention (16 channels, GN(32) cannot)
    gn_backbone = resnet(
        'odconv1x', depth=18, norm_cfg=dict(type='GN', num_groups=32))
    assert isinstance(gn_backbone.layer1[0].norm1, nn.GroupNorm)
    assert isinstance(gn_backbone.layer1[0].conv1.attention.bn, nn.BatchNorm2d)
    gn = resnet(
        'odconv1x',
        depth=18,
        dynamic=dict(
            conv_cfg=dict(
                type='ODConv2d', norm_cfg=dict(type='GN', num_groups=4))))
    assert isinstance(gn.layer1[0].conv1.attention.bn, nn.GroupNorm)


def test_temperature_argument():
    model = resnet('dyconv4x', depth=18, temperature=30.0)
    temps = get_temperatures(model)
    assert len(temps) == 8 * 2 + 3 and set(temps.values()) == {30.0}
    assert get_temperatures(resnet('condconv8x', depth=18)) == {}


@pytest.mark.parametrize('preset', ['condconv8x', 'dyconv4x', 'odconv4x'])
def test_with_cp_and_single_image_training(preset):
    model = resnet(preset, depth=18, with_cp=True, frozen_stages=-1)
    model.train()
    outs = model(torch.randn(1, 3, 32, 32).requires_grad_())
    sum(o.sum() for o in outs).backward()
    dyn = [m for m in model.modules() if isinstance(m, DynamicConv2d)]
    assert dyn and all(m.weight.grad is not None for m in dyn)


def test_init_weights_initialises_dynamic_layers():
    model = resnet('odconv4x', depth=18)
    model.init_weights()
    layer = model.layer1[0].conv1
    assert isinstance(layer, ODConv2d)
    # per-kernel Kaiming normal, fan_out: std = sqrt(2 / (C_out * k * k))
    std = layer.weight[0].std().item()
    assert abs(std - (2 / (64 * 9))**0.5) < 0.01
    assert torch.all(layer.attention.bn.weight == 1)
    assert not torch.equal(layer.weight[0], layer.weight[1])
    assert isinstance(resnet('dyconv4x', depth=18).layer4[0].conv1, DyConv2d)
