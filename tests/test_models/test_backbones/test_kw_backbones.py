"""KernelWarehouse presets of DynamicResNet and DynamicMobileNetV2.

``backbones.json`` holds what the released KW models build (their code run
on its json settings, see ``tests/data/kernel_warehouse/README.md``): every
warehouse's cell shape, every KW conv's warehouse, first cell, attention
widths and one-hot assignment, and the parameter counts of the ImageNet
models with their classifier.
"""
import importlib
import json
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.registry import DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

from dynconv_mmdet.models.backbones import MOBILENET_V2_PRESETS, RESNET_PRESETS
from dynconv_mmdet.models.backbones.layout import \
    KW_RELEASE_NAMES as RELEASE_NAMES
from dynconv_mmdet.models.layers import KWConv2d
from dynconv_mmdet.models.layers.kernel_warehouse import fuse_warehouse_name

importlib.import_module('projects.classification.dynconv_cls')

RELEASE = json.load(
    open(
        osp.join(
            osp.dirname(__file__), '..', '..', 'data', 'kernel_warehouse',
            'backbones.json')))
KW_RESNET = [p for p in RESNET_PRESETS if p.startswith('kw')]
KW_MOBILENET_V2 = [p for p in MOBILENET_V2_PRESETS if p.startswith('kw')]

# Detection backbones (no classifier); equal to the release's models minus
# their classifier. ResNet-34 / -101, ResNet-50 1/4x and 2x and MobileNetV2
# 0.75 follow the release's rules (ours: no released model).
RESNET_COUNTS = {
    18: (3_518_768, 6_918_044, 11_419_148, 22_729_127, 45_349_085),
    34: (7_599_840, 14_985_468, 21_971_688, 43_747_695, 87_299_709),
    50: (8_846_520, 15_589_264, 26_003_310, 50_657_588, 99_966_144),
    101: (17_484_368, 33_388_498, 51_262_148, 99_858_223, 197_050_373),
}
MOBILENET_V2_COUNTS = {
    0.5: (740_168, 1_573_522, 3_367_587),
    0.75: (1_919_146, 3_501_552, 6_867_848),
    1.0: (1_927_676, 3_887_146, 10_098_382),
}
# ImageNet models (classifier included), millions, as the release's README
README = {
    ('resnet', 18, 'kw1d4x'): 4.08,
    ('resnet', 18, 'kw1d2x'): 7.43,
    ('resnet', 18, 'kw1x'): 11.93,
    ('resnet', 18, 'kw2x'): 23.24,
    ('resnet', 18, 'kw4x'): 45.86,
    ('resnet', 50, 'kw1d2x'): 17.64,
    ('resnet', 50, 'kw1x'): 28.05,
    ('resnet', 50, 'kw4x'): 102.02,
    ('mobilenet_v2', 1.0, 'kw1d2x'): 2.65,
    ('mobilenet_v2', 1.0, 'kw1x'): 5.17,
    ('mobilenet_v2', 1.0, 'kw4x'): 11.38,
    ('mobilenet_v2', 0.5, 'kw1d2x'): 1.47,
    ('mobilenet_v2', 0.5, 'kw1x'): 2.85,
    ('mobilenet_v2', 0.5, 'kw4x'): 4.65,
}


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build(arch: str, size, preset: str, **kwargs) -> nn.Module:
    if arch == 'resnet':
        cfg = dict(type='DynamicResNet', depth=size)
    else:
        cfg = dict(type='DynamicMobileNetV2', widen_factor=size)
    return MODELS.build(dict(cfg, preset=preset, **kwargs))


def build_meta(arch: str, size, preset: str, **kwargs) -> nn.Module:
    with torch.device('meta'):
        return build(arch, size, preset, **kwargs)


def kw_layout(backbone: nn.Module) -> dict:
    """What ``backbones.json`` records, from our backbone."""
    convs = []
    for name, m in backbone.named_modules():
        if isinstance(m, KWConv2d):
            a = m.attention
            cells = [-1 if c == a.num_cells else c for c in a.assignment]
            convs.append([
                name, m.warehouse_index, a.start_cell, a.fc1.out_features,
                a.fc2.out_features, a.fc3.in_features if a.num_basis else 0,
                cells
            ])
    return dict(
        warehouses=[list(w.shape) for w in backbone.warehouse_manager.weights],
        convs=convs)


# --------------------------------------------------------------------------
# The release's warehouses, assignments and counts
def _released_layouts():
    for arch, entries in RELEASE.items():
        for key, entry in entries.items():
            if 'convs' in entry:
                yield arch, key


@pytest.mark.parametrize('arch, key', list(_released_layouts()))
def test_warehouses_and_assignment_equal_the_release(arch, key):
    size, preset = key.split('_')
    size = int(size) if arch == 'resnet' else float(size)
    ours = kw_layout(build_meta(arch, size, preset))
    ref = RELEASE[arch][key]
    # MobileNetV2 1/2x: the classifier's warehouse is the head's
    convs = [c for c in ref['convs'] if not c[0].startswith('head.')]
    warehouses = ref['warehouses'][:len(ours['warehouses'])]
    assert len(ref['warehouses']) - len(warehouses) == len(
        ref['convs']) - len(convs)
    assert ours['warehouses'] == warehouses
    assert [c[0] for c in ours['convs']] == [c[0] for c in convs]
    assert ours['convs'] == convs


@pytest.mark.parametrize('depth', sorted(RESNET_COUNTS))
def test_resnet_backbone_parameter_counts(depth):
    for preset, expected in zip(KW_RESNET, RESNET_COUNTS[depth]):
        model = build_meta('resnet', depth, preset)
        release = RELEASE['resnet'][f'{depth}_{preset}']
        assert num_params(model) == expected, preset
        assert expected == release['params'] - release['classifier']


@pytest.mark.parametrize('width', sorted(MOBILENET_V2_COUNTS))
def test_mobilenet_v2_backbone_parameter_counts(width):
    # 0.75 takes the settings of 0.5 and 1.0, which are the same
    for preset, expected in zip(KW_MOBILENET_V2, MOBILENET_V2_COUNTS[width]):
        model = build_meta('mobilenet_v2', width, preset)
        release = RELEASE['mobilenet_v2'][f'{width}_{preset}']
        assert num_params(model) == expected, preset
        assert expected == release['params'] - release['classifier']


def imagenet_classifier(arch: str, size, preset: str) -> nn.Module:
    """The classification project's model: backbone, GAP, head."""
    if arch == 'resnet':
        backbone = dict(
            type='mmdet.DynamicResNet',
            depth=size,
            out_indices=(3, ),
            norm_eval=False)
        channels = 512 if size < 50 else 2048
    else:
        backbone = dict(
            type='mmdet.DynamicMobileNetV2',
            widen_factor=size,
            out_indices=(7, ),
            norm_eval=False)
        channels = 1280
    head = 'KWLinearClsHead' if preset == 'kw1d2x' and \
        arch == 'mobilenet_v2' else 'DropoutLinearClsHead'
    cfg = dict(
        type='ImageClassifier',
        backbone=dict(backbone, preset=preset),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type=head,
            num_classes=1000,
            in_channels=channels,
            loss=dict(type='CrossEntropyLoss')))
    from mmpretrain.registry import MODELS as CLS_MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'), \
            torch.device('meta'):
        return CLS_MODELS.build(cfg)


@pytest.mark.parametrize('arch, size, preset', sorted(README))
def test_imagenet_models_have_the_readme_counts(arch, size, preset):
    model = imagenet_classifier(arch, size, preset)
    count = num_params(model)
    assert count == RELEASE[arch][f'{size}_{preset}']['params']
    if (arch, size, preset) == ('resnet', 18, 'kw1d4x'):
        # the README's 4.08M is not what kw1d4x_resnet18.json builds
        assert count == 4_031_768 and README[arch, size, preset] == 4.08
    else:
        assert round(count / 1e6, 2) == README[arch, size, preset]


def test_mobilenet_v2_half_classifier_draws_from_its_own_warehouse():
    model = imagenet_classifier('mobilenet_v2', 1.0, 'kw1d2x')
    assert num_params(model.head) == 726_720  # 0.73M of 2.65M
    assert model.head.warehouse_manager.names == ['classifier']
    cells = model.head.warehouse_manager.weights[0]
    assert tuple(cells.shape) == (20, 1000, 32, 1, 1)
    assert model.head.fc.conv.attention.fc1.out_features == 40  # 1280 / 32


def test_kw_classifier_head_trains_and_keeps_its_init():
    heads = importlib.import_module(
        'projects.classification.dynconv_cls.models.kw_head')
    head = heads.KWLinearClsHead(
        num_classes=10,
        in_channels=64,
        kw_cfg=dict(heads.KW1D2X_CLASSIFIER, cell_inplane_ratio=0.25),
        temperature=1.0)
    attention = head.fc.conv.attention
    before = attention.fc1.weight.detach().clone()
    head.init_weights()  # the KW layer's own init, no Normal(0.01)
    assert attention.fc1.weight.std() > 0.1
    assert not torch.equal(before, attention.fc1.weight)
    assert head.fc.conv.temperature == 1.0
    head.train()
    scores = head((torch.randn(1, 64), ))
    assert scores.shape == (1, 10)
    scores.sum().backward()
    assert head.warehouse_manager.weights[0].grad is not None


# --------------------------------------------------------------------------
# The release's assignment rules
def test_sharing_range_string_shares_what_the_words_share():
    for arch, size, presets in (('resnet', 18, ['layer_conv']),
                                ('resnet', 50, ['layer_conv']),
                                ('mobilenet_v2', 1.0, ['layer'])):
        model = build_meta(arch, size, 'static')
        namer = RELEASE_NAMES[arch]
        names = [
            n for n in (namer(model, path)
                        for path, m in model.named_modules()
                        if isinstance(m, nn.Conv2d)) if n is not None
        ]
        assert len(names) > 10
        for string in presets:
            by_chars = [fuse_warehouse_name(n, string) for n in names]
            by_words = [
                fuse_warehouse_name(n, string.split('_')) for n in names
            ]

            def partition(fused):
                return sorted(
                    sorted(i for i, f in enumerate(fused) if f == key)
                    for key in set(fused))

            assert partition(by_chars) == partition(by_words)
    # one warehouse per stage in a ResNet
    assert build_meta('resnet', 50, 'kw1x').warehouse_manager.names == [
        f'stage{s}_layer_conv' for s in range(4)
    ]


def test_release_names_and_handover():
    r18 = build_meta('resnet', 18, 'static')
    r50 = build_meta('resnet', 50, 'static')
    mb = build_meta('mobilenet_v2', 1.0, 'static')
    resnet, mobilenet = RELEASE_NAMES['resnet'], RELEASE_NAMES['mobilenet_v2']
    assert resnet(r18, 'layer1.0.conv1') == 'stage0_layer0_conv0'
    assert resnet(r50, 'layer1.0.conv1') == 'stage-1_layer0_conv0'
    assert resnet(r50, 'layer2.0.conv1') == 'stage0_layer3_conv0'
    assert resnet(r50, 'layer2.0.downsample.0') == 'stage0_layer4_conv0'
    assert resnet(r50, 'layer2.0.conv2') == 'stage1_layer0_conv1'
    assert resnet(r50, 'layer3.2.conv3') == 'stage2_layer2_conv2'
    assert resnet(r50, 'conv1') is None  # the stem: a warehouse of its own
    assert mobilenet(mb, 'conv1.conv') == 'stage0_conv0'
    assert mobilenet(mb, 'layer2.0.expand_conv.conv') == \
        'stage1_layer1_pwconv0'
    assert mobilenet(mb, 'layer2.1.depthwise_conv.conv') == \
        'stage2_layer0_dwconv0'
    # layers 6 and 7 share stage 6; the last 1x1 conv joins it
    assert mobilenet(mb, 'layer7.0.linear_conv.conv') == \
        'stage6_layer2_pwconv1'
    assert mobilenet(mb, 'conv2.conv') == 'stage6_layer3_pwconv1'


def test_release_leaves_its_static_convs_static():
    r50 = build_meta('resnet', 50, 'kw1x')
    assert type(r50.layer1[0].conv1) is nn.Conv2d
    assert type(r50.layer1[0].downsample[0]) is nn.Conv2d  # stride 1
    assert isinstance(r50.layer2[0].downsample[0], KWConv2d)
    assert isinstance(r50.layer1[1].conv1, KWConv2d)
    assert type(r50.conv1) is nn.Conv2d
    r18 = build_meta('resnet', 18, 'kw1x')
    assert isinstance(r18.layer1[0].conv1, KWConv2d)
    mb = build_meta('mobilenet_v2', 1.0, 'kw1d2x')
    assert isinstance(mb.conv1.conv, KWConv2d)
    assert isinstance(mb.conv2.conv, KWConv2d)
    assert type(mb.layer5[2].expand_conv.conv) is nn.Conv2d
    assert type(mb.layer6[0].linear_conv.conv) is nn.Conv2d
    assert isinstance(mb.layer6[0].depthwise_conv.conv, KWConv2d)
    assert isinstance(mb.layer6[1].expand_conv.conv, KWConv2d)


def test_bottleneck_variant_and_user_overrides():
    r50 = build_meta('resnet', 50, 'kw1d2x')
    assert r50.layer2[0].conv2.attention.num_basis == 16
    r18 = build_meta('resnet', 18, 'kw1d2x')
    assert r18.layer2[0].conv2.attention.num_basis == 0
    # the user's conv_cfg replaces the preset's, Bottleneck variant included
    own = build_meta(
        'resnet',
        50,
        'kw1d2x',
        dynamic=dict(
            conv_cfg=dict(
                type='KWConv2d',
                cell_num_ratio=0.5,
                cell_inplane_ratio=0.5,
                cell_outplane_ratio=0.5)))
    assert own.layer2[0].conv2.attention.num_basis == 0
    assert type(own.layer1[0].conv1) is nn.Conv2d  # static stays
    everything = build_meta(
        'resnet', 50, 'kw1x', dynamic=dict(static=(), downsample=True))
    assert isinstance(everything.layer1[0].conv1, KWConv2d)
    assert isinstance(everything.layer1[0].downsample[0], KWConv2d)
    assert 'stage-1_layer_conv' in everything.warehouse_manager.names
    with pytest.raises(ValueError, match="'strided'"):
        build_meta('resnet', 18, 'kw1x', dynamic=dict(downsample='all'))


# --------------------------------------------------------------------------
# Training behaviour
def tiny_resnet(preset='kw1x', **kwargs):
    return build(
        'resnet', 18, preset, base_channels=8, stem_channels=8, **kwargs)


def test_single_image_trains_every_warehouse():
    model = tiny_resnet(with_cp=True, frozen_stages=-1)
    model.train()
    outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [8, 16, 32, 64]
    sum(o.sum() for o in outs).backward()
    for cells in model.warehouse_manager.weights:
        assert cells.grad is not None and cells.grad.abs().sum() > 0
    mb = build('mobilenet_v2', 0.5, 'kw1d2x', frozen_stages=-1)
    mb.train()
    outs = mb(torch.randn(1, 3, 64, 64))  # 2x2 maps at stride 32
    assert [o.shape[1] for o in outs] == [16, 16, 48, 1280]
    sum(o.sum() for o in outs).backward()
    assert all(w.grad is not None for w in mb.warehouse_manager.weights)


@pytest.mark.parametrize('freeze_shared_state', [True, False])
def test_frozen_stages_and_the_freezing_switch(freeze_shared_state):
    model = tiny_resnet(
        frozen_stages=1, freeze_shared_state=freeze_shared_state)
    model.train()
    cells = model.warehouse_manager.weights
    assert not any(p.requires_grad for p in model.layer1.parameters())
    # stage 0's warehouse also feeds layer2's first conv1 and downsample
    assert model.layer2[0].conv1.warehouse_index == 0
    assert model.layer2[0].downsample[0].warehouse_index == 0
    assert model.layer2[0].conv1.attention.fc1.weight.requires_grad
    assert cells[0].requires_grad is not freeze_shared_state
    assert all(w.requires_grad for w in cells[1:])


def test_norm_eval_and_sync_bn_reach_the_attention():
    model = tiny_resnet(norm_eval=True)
    model.train()
    norms = [
        m.attention.norm1 for m in model.modules() if isinstance(m, KWConv2d)
    ]
    assert norms and all(isinstance(n, _BatchNorm) for n in norms)
    assert not any(n.training for n in norms)
    sync = build_meta(
        'mobilenet_v2',
        0.5,
        'kw1x',
        norm_cfg=dict(type='SyncBN', requires_grad=True))
    assert isinstance(sync.conv1.conv.attention.norm1, nn.SyncBatchNorm)
    assert isinstance(sync.layer3[1].depthwise_conv.conv.attention.norm1,
                      nn.SyncBatchNorm)


def test_detection_temperature_is_zero_and_dense_init_is_refused():
    model = tiny_resnet()
    convs = [m for m in model.modules() if isinstance(m, KWConv2d)]
    assert {m.temperature for m in convs} == {0.0}
    with pytest.raises(ValueError, match='temperature 1'):
        convs[0].init_from_dense(torch.zeros(8, 8, 3, 3))
    imagenet = tiny_resnet(temperature=1.0)
    conv = imagenet.layer1[0].conv1
    conv.init_from_dense(torch.ones(8, 8, 3, 3))
    kernels = conv.assemble_kernels(conv.kw_attention(torch.ones(1, 8, 4, 4)))
    torch.testing.assert_close(kernels, torch.ones(1, 8, 8, 3, 3))
