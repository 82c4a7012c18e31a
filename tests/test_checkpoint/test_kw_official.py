"""Official KernelWarehouse ImageNet checkpoints load exactly.

``tests/data/kernel_warehouse/official/`` holds the key lists of every
released KW classification model and, for four of them, the features the
release's own model computes from weights filled by
:func:`~dynconv_mmdet.testing.release_weights.release_state_dict` (see the
README there). The tests rebuild those weights, wrap them as the release's
``main.py`` saves them (``{'model': ..., 'args': argparse.Namespace, ...}``,
with or without DataParallel's ``module.``) and load them into our backbones
through ``init_cfg`` and through the converter.
"""
import argparse
import importlib
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS

from dynconv_mmdet.checkpoint import (CheckpointError, CheckpointMismatchError,
                                      convert_kw_official_backbone,
                                      find_key_map, match_state_dict,
                                      safe_torch_load, to_backbone_state_dict)
from dynconv_mmdet.models.layers import set_temperature
from dynconv_mmdet.testing.malicious import (UNSAFE_ENV, WritesFile,
                                             save_malicious_checkpoint)
from dynconv_mmdet.testing.release_weights import (read_key_list,
                                                   release_input,
                                                   release_state_dict)

DATA = osp.join(
    osp.dirname(__file__), '..', 'data', 'kernel_warehouse', 'official')

#: The release's ImageNet KW models (``configs/*/kw*.json``).
RELEASED = ('kw1d4x_resnet18', 'kw1d2x_resnet18', 'kw1x_resnet18',
            'kw2x_resnet18', 'kw4x_resnet18', 'kw1d2x_resnet50',
            'kw1x_resnet50', 'kw4x_resnet50', 'kw1d2x_mobilenetv2_050',
            'kw1x_mobilenetv2_050', 'kw4x_mobilenetv2_050',
            'kw1d2x_mobilenetv2_100', 'kw1x_mobilenetv2_100',
            'kw4x_mobilenetv2_100')
#: Those with reference features, and the prefix their files are saved with
#: (DataParallel's ``module.`` or none).
FEATURES = {
    'kw1d4x_resnet18': 'module.',
    'kw1d2x_resnet50': '',
    'kw1x_mobilenetv2_050': '',
    'kw1d2x_mobilenetv2_100': 'module.',
}


def model_of(name):
    """``(arch, backbone config)`` of a released model's name."""
    preset, model = name.split('_', 1)
    if model.startswith('resnet'):
        return 'resnet', dict(
            type='DynamicResNet', depth=int(model[6:]), preset=preset)
    width = int(model.split('_')[1]) / 100
    return 'mobilenet_v2', dict(
        type='DynamicMobileNetV2', widen_factor=width, preset=preset)


def build(name, **kwargs):
    return MODELS.build(dict(model_of(name)[1], **kwargs))


def build_meta(name, **kwargs):
    with torch.device('meta'):
        return build(name, **kwargs)


def release_args(name):
    """What the release's ``main.py`` keeps in ``args`` (a few entries)."""
    preset, model = name.split('_', 1)
    if preset == 'kw1d2x' and model.startswith('mobilenetv2'):
        model = name  # kw1d2x_mobilenetv2.py
    else:
        model = f'kw_{model}'
    return argparse.Namespace(
        model=model, epochs=300, sharing_range='layer_conv', lr=4e-3)


def save_release(name, path, prefix=''):
    """The release's checkpoint of ``name``, filled from seed 0."""
    state = release_state_dict(read_key_list(osp.join(DATA, f'{name}.txt')))
    torch.save(
        dict(
            model={
                prefix + k: v
                for k, v in state.items()
            },
            optimizer=dict(state={}, param_groups=[dict(lr=0.0)]),
            epoch=299,
            scaler=dict(scale=65536.0),
            args=release_args(name)), path)
    return state


def classifier_keys(shapes):
    """The release's classifier: ``fc.*`` / ``classifier.*`` and, for a KW
    classifier (MobileNetV2 1/2x), the last warehouse."""
    keys = {k for k in shapes if k.startswith(('fc.', 'classifier.'))}
    if any(k.startswith('classifier.1.conv.') for k in keys):
        last = max(
            int(k.rsplit('.', 1)[1]) for k in shapes
            if k.startswith('warehouse_manager.'))
        keys.add(f'warehouse_manager.weights.{last}')
    return keys


@pytest.mark.parametrize('name', RELEASED)
def test_every_released_model_maps_onto_its_backbone(name):
    shapes = read_key_list(osp.join(DATA, f'{name}.txt'))
    arch, _ = model_of(name)
    backbone = build_meta(name)
    for prefix in ('', 'module.'):
        state = {
            prefix + k: torch.empty(s, device='meta')
            for k, s in shapes.items()
        }
        assert find_key_map(state, arch).name == 'official KernelWarehouse'
        converted = to_backbone_state_dict(state, arch)
        _, report = match_state_dict(backbone, converted)
        assert report.fits and not report.expanded, report
        assert set(converted) == set(backbone.state_dict())
    # only the classifier (and its warehouse) is dropped
    assert len(converted) == len(shapes) - len(classifier_keys(shapes))


def features(backbone, x):
    backbone.eval()
    with torch.no_grad():
        return backbone(x)


def assert_features(ours, ref, temperature):
    assert len(ours) == sum(
        k.startswith(f'T{temperature}.') for k in ref.files)
    for i, out in enumerate(ours):
        expected = torch.from_numpy(ref[f'T{temperature}.out{i}'])
        torch.testing.assert_close(
            out, expected, rtol=1e-4, atol=1e-5 * expected.abs().max())


@pytest.mark.parametrize('name', sorted(FEATURES))
def test_official_checkpoint_gives_the_release_features(name, tmp_path):
    arch, _ = model_of(name)
    src = str(tmp_path / f'{name}.pth')
    state = save_release(name, src, FEATURES[name])
    ref = np.load(osp.join(DATA, f'{name}.npz'))
    x = release_input(ref['meta.input_shape'].tolist(), seed=1)

    # 1. init_cfg reads the release's file as it is
    backbone = build(
        name,
        out_indices=(1, 2, 4, 7) if arch == 'mobilenet_v2' else (0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=src))
    backbone.init_weights()
    loaded = backbone.state_dict()
    for key, value in to_backbone_state_dict(state, arch).items():
        assert torch.equal(loaded[key], value), key
    assert_features(features(backbone, x), ref, 0)  # detection's default
    set_temperature(backbone, 1.0)  # the start of ImageNet annealing
    assert_features(features(backbone, x), ref, 1)

    # 2. the converter writes a backbone file that loads to the same state
    dst = str(tmp_path / 'converted.pth')
    out = convert_kw_official_backbone(
        src, dst, arch, check_against=build_meta(name))
    assert out['meta']['release_args']['model'] == release_args(name).model
    assert out['meta']['layout'] == 'official KernelWarehouse'
    again = build(name, init_cfg=dict(type='Pretrained', checkpoint=dst))
    again.init_weights()
    assert again.state_dict().keys() == loaded.keys()
    for key, value in again.state_dict().items():
        assert torch.equal(value, loaded[key]), key


def test_args_entry_is_read_as_data_only(tmp_path):
    path = str(tmp_path / 'release.pth')
    save_release('kw1x_mobilenetv2_050', path)
    # plain safe loading refuses the Namespace; the KW layout names it
    with pytest.raises(CheckpointError, match='argparse.Namespace'):
        safe_torch_load(path)
    out = convert_kw_official_backbone(path, str(tmp_path / 'out.pth'),
                                       'mobilenet_v2')
    assert out['meta']['release_args'] == dict(
        model='kw_mobilenetv2_050', epochs=300, sharing_range='layer_conv')
    # the output holds plain data only
    assert set(safe_torch_load(str(tmp_path /
                                   'out.pth'))) == {'state_dict', 'meta'}


@pytest.mark.parametrize('name, other, expected', [
    ('kw1d4x_resnet18', dict(preset='kw1x'),
     'warehouse_manager.weights.0: (56, 32, 32, 1, 1) vs (56, 64, 64, 1, 1)'),
    ('kw1x_mobilenetv2_050', dict(widen_factor=1.0),
     'warehouse_manager.weights.0: (9, 16, 3, 1, 1) vs (9, 32, 3, 1, 1)'),
])
def test_wrong_preset_or_width_lists_keys_and_shapes(name, other, expected,
                                                     tmp_path):
    path = str(tmp_path / 'release.pth')
    save_release(name, path)
    backbone = build(
        name, **other, init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointMismatchError) as err:
        backbone.init_weights()
    message = str(err.value)
    assert 'shape mismatch (key: checkpoint vs model)' in message
    assert expected in message


def test_wrong_depth_is_refused_before_writing(tmp_path):
    src, dst = str(tmp_path / 'release.pth'), str(tmp_path / 'out.pth')
    save_release('kw1d4x_resnet18', src)
    with pytest.raises(CheckpointMismatchError) as err:
        convert_kw_official_backbone(
            src, dst, 'resnet', check_against=build_meta('kw1d4x_resnet50'))
    message = str(err.value)
    assert 'is a ResNet-18' in message and '--depth 18' in message
    assert not osp.exists(dst)


def test_converter_cli(tmp_path, capsys):
    cli = importlib.import_module(
        'tools.model_converters.kw_official_to_backbone')
    src = str(tmp_path / 'kw1x_mobilenetv2_050.pth')
    state = save_release('kw1x_mobilenetv2_050', src, 'module.')
    dst = str(tmp_path / 'out' / 'kw1x_mobilenetv2-0.5_in1k.pth')
    argv = [
        src, dst, '--arch', 'mobilenet_v2', '--widen-factor', '0.5',
        '--preset', 'kw1x'
    ]
    cli.main(argv)
    assert 'kw_mobilenetv2_050 (official KernelWarehouse)' in \
        capsys.readouterr().out
    converted = safe_torch_load(dst)['state_dict']
    assert torch.equal(
        converted['layer7.0.linear_conv.conv.attention.'
                  'fc2.weight'],
        state['features.17.conv.2.attention.fc2.weight'])
    assert torch.equal(converted['warehouse_manager.weights.12'],
                       state['warehouse_manager.weights.12'])
    # another preset, or one the backbone lacks: an error, nothing written
    wrong = str(tmp_path / 'wrong.pth')
    with pytest.raises(SystemExit) as err:
        cli.main([src, wrong] + argv[2:-1] + ['kw4x'])
    assert str(err.value.code).startswith(f'error: checkpoint {src} does '
                                          'not fit the DynamicMobileNetV2')
    with pytest.raises(SystemExit, match="no preset 'kw2x'"):
        cli.main([src, wrong] + argv[2:-1] + ['kw2x'])
    assert not osp.exists(wrong)


def test_release_static_baseline_converts(tmp_path):
    """The release's static MobileNetV2 (``mobilenetv2_050.json``, the
    baseline of its detectors) has torchvision's names."""
    import torchvision
    cli = importlib.import_module(
        'tools.model_converters.kw_official_to_backbone')
    dense = torchvision.models.mobilenet_v2(width_mult=0.5).eval()
    src, dst = str(tmp_path / 'mobilenetv2_050.pth'), str(tmp_path / 'o.pth')
    torch.save(
        dict(
            model=dense.state_dict(),
            args=argparse.Namespace(model='mobilenetv2_050')), src)
    cli.main([
        src, dst, '--arch', 'mobilenet_v2', '--widen-factor', '0.5',
        '--preset', 'static'
    ])
    meta = safe_torch_load(dst)['meta']
    assert meta['layout'] == 'official ODConv / torchvision'
    for path in (src, dst):
        backbone = MODELS.build(
            dict(
                type='DynamicMobileNetV2',
                widen_factor=0.5,
                init_cfg=dict(type='Pretrained', checkpoint=path)))
        backbone.init_weights()
        x = torch.randn(1, 3, 32, 32)
        ours = features(backbone, x)[-1]
        with torch.no_grad():
            expected = dense.features(x)
        torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('payload_in', ['meta', 'args'])
def test_malicious_release_runs_nothing(payload_in, tmp_path, monkeypatch):
    """Even with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, a payload next to
    the weights or inside ``args`` is refused, through both paths."""
    marker = str(tmp_path / 'pwned')
    src, dst = str(tmp_path / 'evil.pth'), str(tmp_path / 'out.pth')
    state = release_state_dict(
        read_key_list(osp.join(DATA, 'kw1d4x_resnet18.txt')))
    if payload_in == 'meta':
        save_malicious_checkpoint(
            src, marker, state, args=release_args('kw1d4x_resnet18'))
    else:
        torch.save(
            dict(
                model=state,
                args=argparse.Namespace(
                    model='kw_resnet18', hook=WritesFile(marker))), src)
    monkeypatch.setenv(UNSAFE_ENV, '1')
    cli = importlib.import_module(
        'tools.model_converters.kw_official_to_backbone')
    with pytest.raises(SystemExit) as err:
        cli.main([
            src, dst, '--arch', 'resnet', '--depth', '18', '--preset', 'kw1d4x'
        ])
    assert str(err.value.code).startswith(f'error: refusing to load {src}')
    backbone = build(
        'kw1d4x_resnet18', init_cfg=dict(type='Pretrained', checkpoint=src))
    with pytest.raises(CheckpointError, match='refusing to load'):
        backbone.init_weights()
    assert not osp.exists(marker) and not osp.exists(dst)
