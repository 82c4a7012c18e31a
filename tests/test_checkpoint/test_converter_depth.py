# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The ImageNet converters refuse a file whose structure is not the one asked
for (``--depth``, ``--widen-factor``), name the file's own and save nothing.

The ODConv files are stood in for by the released key lists
(``tests/data/official_keys``) with one-element tensors (only the keys are
compared, except the MobileNetV2 stem, which gets its real shape).
"""
import importlib
import os.path as osp
import re

import pytest
import torch

from dynconv_mmdet.checkpoint import CheckpointMismatchError
from dynconv_mmdet.checkpoint.convert import (RESNET_LAYOUTS,
                                              check_resnet_depth,
                                              convert_kw_official_backbone,
                                              convert_official_backbone,
                                              mobilenet_v2_stem_width,
                                              resnet_depth, resnet_layout)

DATA = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'data')


def _official_file(name: str, path: str) -> str:
    """The released ODConv file ``name`` (key list), tensors of one element
    except the stem conv."""
    state = {}
    with open(osp.join(DATA, 'official_keys', f'{name}.txt')) as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            key, shape = line.rstrip('\n').split('\t')
            dims = [int(s) for s in re.findall(r'\d+', shape)]
            stem = key in ('features.0.0.weight', 'conv1.weight')
            state['module.' + key] = torch.zeros(dims if stem else [1])
    torch.save(dict(epoch=1, state_dict=state), path)
    return path


def _odconv_cli():
    return importlib.import_module(
        'tools.model_converters.odconv_official_to_backbone')


def _refused(argv) -> str:
    with pytest.raises(SystemExit) as info:
        _odconv_cli().main(argv)
    code = info.value.code
    assert isinstance(code, str) and code.startswith('error: '), code
    return code


@pytest.mark.parametrize('name, actual, asked', [
    ('od_resnet50_1x', 50, 101),
    ('od_resnet101_2x', 101, 50),
    ('od_resnet18_4x', 18, 34),
    ('od_resnet50_4x', 50, 34),
])
def test_odconv_wrong_depth_names_the_files_depth(tmp_path, name, actual,
                                                  asked):
    src = _official_file(name, str(tmp_path / f'{name}.pth.tar'))
    dst = str(tmp_path / 'out' / 'backbone.pth')
    message = _refused([src, dst, '--arch', 'resnet', '--depth', str(asked)])
    assert src in message
    assert f'is a ResNet-{actual}' in message
    assert f'not the ResNet-{asked} asked for' in message
    assert f'--depth {actual}' in message
    assert f'{dst} was not written' in message
    assert not osp.exists(dst)
    assert not osp.exists(osp.dirname(dst))


def test_odconv_right_depth_is_saved(tmp_path, capsys):
    src = _official_file('od_resnet101_2x', str(tmp_path / 'r101.pth.tar'))
    dst = str(tmp_path / 'r101.pth')
    _odconv_cli().main([src, dst, '--arch', 'resnet', '--depth', '101'])
    assert osp.isfile(dst)
    assert 'saved' in capsys.readouterr().out


def test_odconv_depth_not_in_the_layouts_is_an_argument_error(tmp_path):
    src = _official_file('od_resnet18_4x', str(tmp_path / 'r18.pth.tar'))
    with pytest.raises(SystemExit) as info:
        _odconv_cli().main([
            src,
            str(tmp_path / 'o.pth'), '--arch', 'resnet', '--depth', '77'
        ])
    assert info.value.code == 2
    assert not osp.exists(tmp_path / 'o.pth')


def test_incomplete_resnet_matches_no_depth(tmp_path):
    src = str(tmp_path / 'cut.pth.tar')
    _official_file('od_resnet50_1x', src)
    ckpt = torch.load(src, weights_only=True)
    ckpt['state_dict'] = {
        k: v
        for k, v in ckpt['state_dict'].items()
        if not k.startswith('module.layer3.5.')
    }
    torch.save(ckpt, src)
    dst = str(tmp_path / 'cut.pth')
    with pytest.raises(CheckpointMismatchError) as info:
        convert_official_backbone(src, dst, 'resnet', depth=50)
    message = str(info.value)
    assert 'Bottleneck x 3-4-5-3' in message
    assert 'the layout of no ResNet depth' in message
    assert 'Bottleneck x 3-4-6-3' in message
    assert not osp.exists(dst)


def test_odconv_wrong_widen_factor_is_refused(tmp_path):
    src = _official_file('od_mobilenetv2_075_1x', str(tmp_path / 'mb.tar'))
    dst = str(tmp_path / 'mb.pth')
    message = _refused(
        [src, dst, '--arch', 'mobilenet_v2', '--widen-factor', '1.0'])
    assert src in message and 'stem has 24 channels' in message
    assert 'widen factor about 0.75' in message
    assert not osp.exists(dst)
    _odconv_cli().main(
        [src, dst, '--arch', 'mobilenet_v2', '--widen-factor', '0.75'])
    assert osp.isfile(dst)


def test_layouts_are_mmdets():
    from mmdet.models.backbones import ResNet
    from mmdet.models.backbones.resnet import Bottleneck
    from mmdet.models.utils import make_divisible
    assert RESNET_LAYOUTS == {
        depth: (block is Bottleneck, tuple(stages))
        for depth, (block, stages) in ResNet.arch_settings.items()
    }
    for width in (0.25, 0.35, 0.5, 0.75, 1.0, 1.3, 1.4, 2.0):
        assert mobilenet_v2_stem_width(width) == make_divisible(32 * width, 8)


def test_layout_of_a_built_backbone():
    from mmdet.registry import MODELS

    import dynconv_mmdet  # noqa: F401
    for depth in (18, 50):
        with torch.device('meta'):
            backbone = MODELS.build(dict(type='DynamicResNet', depth=depth))
        keys = backbone.state_dict()
        assert resnet_layout(keys) == RESNET_LAYOUTS[depth]
        assert resnet_depth(keys) == depth
        check_resnet_depth(keys, depth, 'src', 'dst')


def test_kw_wrong_depth_names_the_files_depth(tmp_path):
    """The KernelWarehouse converter takes the depth of the backbone it
    checks against (``--depth`` of its tool)."""
    from tests.test_checkpoint.test_kw_official import build_meta, save_release
    src, dst = str(tmp_path / 'release.pth'), str(tmp_path / 'out.pth')
    save_release('kw1d4x_resnet18', src)
    with pytest.raises(CheckpointMismatchError) as info:
        convert_kw_official_backbone(
            src, dst, 'resnet', check_against=build_meta('kw1d4x_resnet50'))
    message = str(info.value)
    assert 'is a ResNet-18' in message and '--depth 18' in message
    assert not osp.exists(dst)

    cli = importlib.import_module(
        'tools.model_converters.kw_official_to_backbone')
    with pytest.raises(SystemExit) as info:
        cli.main([
            src, dst, '--arch', 'resnet', '--depth', '50', '--preset', 'kw1d4x'
        ])
    assert 'is a ResNet-18' in str(info.value.code)
    assert not osp.exists(dst)
