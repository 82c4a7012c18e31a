"""Checkpoint layouts: one registry, one prefix helper, one error text."""
import argparse

import pytest
import torch
from mmdet.registry import MODELS

from dynconv_mmdet.checkpoint import (KeyMap, NonTensorEntry, find_key_map,
                                      load_pretrained, raise_unknown_keys,
                                      register_key_map, registered_key_maps,
                                      strip_prefix, to_backbone_state_dict)
from dynconv_mmdet.checkpoint.key_maps import base as key_map_base


def test_strip_prefix():
    state = {'module.a': 1, 'b': 2, 'module.module.c': 3}
    assert strip_prefix(state, 'module.') == {'a': 1, 'b': 2, 'module.c': 3}
    assert strip_prefix(state, 'module.', only=True) == {'a': 1, 'module.c': 3}
    assert list(state) == ['module.a', 'b', 'module.module.c']


def test_unknown_keys_are_listed_with_a_count():
    raise_unknown_keys([], 'anything')
    with pytest.raises(KeyError) as err:
        raise_unknown_keys([f'k{i}' for i in range(8)], 'a ResNet')
    assert err.value.args[0] == ('8 keys are not part of a ResNet: k0, k1, '
                                 'k2, k3, k4 (and 3 more)')


def test_built_in_layouts_are_asked_most_specific_first():
    names = [k.name for k in registered_key_maps()]
    assert names[0] == 'mmpretrain / mmdet model'
    assert names[-1] == 'official ODConv / torchvision'  # the fallback
    assert names.index('mmdet MobileNetV2 backbone') < len(names) - 1
    one = torch.zeros(1)
    assert find_key_map({
        'module.backbone.conv1.weight': one
    }, 'resnet').name == 'mmpretrain / mmdet model'
    assert find_key_map({
        'layer1.0.conv.0.weight': one
    }, 'mobilenet_v2').name == 'mmdet MobileNetV2 backbone'
    assert find_key_map({
        'features.0.0.weight': one
    }, 'mobilenet_v2').name == 'official ODConv / torchvision'
    # mmpretrain MobileNetV2 names become mmdet's
    assert list(
        to_backbone_state_dict(
            {'backbone.layer2.0.conv.1.conv.weight': one},
            'mobilenet_v2')) == ['layer2.0.depthwise_conv.conv.weight']
    with pytest.raises(ValueError, match='arch'):
        find_key_map({}, 'vgg')


def _net_prefix_layout(state_dict, arch):
    """A made-up release: backbone keys under ``net.``."""
    return strip_prefix(state_dict, 'net.', only=True)


def test_a_new_layout_is_one_registered_function(tmp_path, monkeypatch):
    monkeypatch.setattr(key_map_base, '_KEY_MAPS',
                        list(key_map_base._KEY_MAPS))
    register_key_map(
        KeyMap(
            name='made-up release',
            recognises=lambda sd, arch: any(k.startswith('net.') for k in sd),
            to_backbone=_net_prefix_layout,
            priority=30,
            entries=(NonTensorEntry('args', ('argparse.Namespace', )), )))
    source = MODELS.build(dict(type='DynamicResNet', depth=18))
    for p in source.parameters():
        torch.nn.init.normal_(p)
    path = str(tmp_path / 'release.pth')
    torch.save(
        dict(
            model={
                f'net.{k}': v
                for k, v in source.state_dict().items()
            },
            args=argparse.Namespace(epochs=300)), path)
    target = MODELS.build(dict(type='DynamicResNet', depth=18))
    report = load_pretrained(target, path, arch='resnet')
    assert report.fits and not report.expanded
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
