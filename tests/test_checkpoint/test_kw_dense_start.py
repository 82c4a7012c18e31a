"""Dense ImageNet checkpoints into KernelWarehouse backbones.

A dense kernel maps exactly into the warehouse only where the one-hot cell
assignment is the whole attention: temperature 1 (the start of ImageNet
annealing) and ``cell_num_ratio >= 1``. There the KW backbone starts as the
dense network; elsewhere (detection's fixed temperature 0, ratios below 1)
the loader refuses with the family's reason.
"""
import pytest
import torch
import torchvision
from mmdet.registry import MODELS

from dynconv_mmdet.checkpoint import CheckpointMismatchError


def dense_checkpoint(model, path):
    """A torchvision classifier with random weights and BN statistics,
    saved as torchvision publishes it (a plain state dict)."""
    gen = torch.Generator().manual_seed(0)
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith('num_batches_tracked'):
            continue
        if key.endswith('running_var'):
            value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
        else:
            value.copy_(torch.randn(value.shape, generator=gen) * 0.1)
    torch.save(state, path)
    return model.eval()


def resnet_features(model, x):
    h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    feats = []
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        h = layer(h)
        feats.append(h)
    return feats


def mobilenet_v2_features(model, x, taps=(3, 6, 13, 18)):
    feats = []
    for i, block in enumerate(model.features):
        x = block(x)
        if i in taps:
            feats.append(x)
    return feats


@pytest.mark.parametrize('arch, preset', [('resnet', 'kw1x'),
                                          ('mobilenet_v2', 'kw4x')])
def test_dense_start_at_temperature_one_is_the_dense_network(
        arch, preset, tmp_path):
    path = str(tmp_path / 'dense.pth')
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    if arch == 'resnet':
        dense = dense_checkpoint(torchvision.models.resnet18(), path)
        # mmdet's `pretrained=` takes the same loader
        backbone = MODELS.build(
            dict(
                type='DynamicResNet',
                depth=18,
                preset=preset,
                temperature=1.0,
                pretrained=path))
        ref = resnet_features
    else:
        dense = dense_checkpoint(
            torchvision.models.mobilenet_v2(width_mult=0.5), path)
        backbone = MODELS.build(
            dict(
                type='DynamicMobileNetV2',
                widen_factor=0.5,
                preset=preset,
                temperature=1.0,
                init_cfg=dict(type='Pretrained', checkpoint=path)))
        ref = mobilenet_v2_features
    backbone.init_weights()
    backbone.eval()
    with torch.no_grad():
        ours, expected = backbone(x), ref(dense, x)
    assert len(ours) == len(expected) == 4
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    'preset, temperature, reasons',
    [
        # detection: the family's default temperature, 0
        ('kw1x', None, ('its temperature is 0', 'temperature=1',
                        'start from a KernelWarehouse checkpoint')),
        ('kw1d2x', 1.0, ('its cell_num_ratio is 0.5', )),
    ])
def test_dense_start_is_refused_where_it_is_not_exact(preset, temperature,
                                                      reasons, tmp_path):
    path = str(tmp_path / 'dense.pth')
    dense_checkpoint(torchvision.models.resnet18(), path)
    backbone = MODELS.build(
        dict(
            type='DynamicResNet',
            depth=18,
            preset=preset,
            temperature=temperature,
            init_cfg=dict(type='Pretrained', checkpoint=path)))
    with pytest.raises(CheckpointMismatchError) as err:
        backbone.init_weights()
    message = str(err.value)
    assert 'dense start refused by the conv family' in message
    assert 'layer1.0.conv1.weight: KWConv2d: a dense kernel maps exactly ' \
        'into the warehouse only where the fixed one-hot assignment is ' \
        'the whole attention (temperature 1, cell_num_ratio >= 1)' in message
    for reason in reasons:
        assert reason in message
