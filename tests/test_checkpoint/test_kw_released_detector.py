"""Released KernelWarehouse Mask R-CNN detectors (mmdet 2.x) convert to ours.

The release's detection backbones (``detection/mmdet/models/backbones/
kw_{resnet,mobilenetv2}.py`` with the settings of its configs) have exactly
the state-dict keys of its classification models, classifier included
(checked when the key lists were made, see
``tests/data/kernel_warehouse/official/README.md``); the detector is that
backbone under ``backbone.`` with mmdet 2.x's FPN / RPN / RoI heads.
Tensor ``i`` holds the value ``i``, so a test sees where each one lands.
"""
import importlib
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from dynconv_mmdet.checkpoint import (RELEASED_DETECTORS, compare_state_dict,
                                      convert_released_detector,
                                      format_mismatch, released_detector_type,
                                      safe_torch_load)
from dynconv_mmdet.testing.malicious import (UNSAFE_ENV,
                                             save_malicious_checkpoint)
from dynconv_mmdet.testing.release_weights import (mmdet2_head_shapes,
                                                   numbered_state_dict,
                                                   read_key_list,
                                                   tensor_number)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DATA = osp.join(ROOT, 'tests', 'data', 'kernel_warehouse', 'official')
#: ``arch`` -> (the release's backbone name, FPN input channels)
BACKBONES = {
    'r50': ('resnet50', (256, 512, 1024, 2048)),
    'mbv2': ('mobilenetv2_100', (24, 32, 96, 1280)),
}
#: The released detectors: Mask R-CNN, KW 1x and 4x.
PRESETS = ('kw1x', 'kw4x')


def released_state_dict(arch, preset):
    """A released KW Mask R-CNN's state dict (tensor ``i`` holds ``i``)."""
    model, channels = BACKBONES[arch]
    shapes = {
        f'backbone.{k}': v
        for k, v in read_key_list(osp.join(DATA,
                                           f'{preset}_{model}.txt')).items()
    }
    shapes.update(mmdet2_head_shapes(channels, with_mask=True))
    return numbered_state_dict(shapes)


def build_detector(config, device='meta'):
    register_all_modules()
    import dynconv_mmdet  # noqa: F401
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    cfg.model.backbone.init_cfg = None
    with torch.device(device):
        return MODELS.build(cfg.model)


def configs(arch, preset):
    """Our configs of the released detector: the release's recipe and our
    SGD recipe build the same model."""
    return [
        f'{preset}_mask_rcnn_{arch}_fpn_adamw_1x.py',
        f'{preset}_mask_rcnn_{arch}_fpn_1x.py'
    ]


@pytest.mark.parametrize('arch', sorted(BACKBONES))
@pytest.mark.parametrize('preset', PRESETS)
def test_released_detector_fits_our_configs(arch, preset):
    source = released_state_dict(arch, preset)
    converted = convert_released_detector(source, arch)  # told by its keys
    assert released_detector_type(source) == 'MaskRCNN'
    layout = RELEASED_DETECTORS['kw', arch]
    assert not any(k in converted for k in layout.classifier_keys)
    assert len(converted) == len(source) - len(layout.classifier_keys)
    wrapped = {f'module.{k}': v for k, v in source.items()}
    assert convert_released_detector(wrapped, arch,
                                     'kw').keys() == converted.keys()
    for config in configs(arch, preset):
        _, report = compare_state_dict(build_detector(config), converted)
        assert report.fits, format_mismatch(report, 'released', config, '')
        assert not report.kept_init


def test_every_tensor_lands_in_its_place():
    source = released_state_dict('mbv2', 'kw1x')
    model = build_detector(configs('mbv2', 'kw1x')[0], device='cpu')
    result = model.load_state_dict(
        convert_released_detector(source, 'mbv2'), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    classifier = RELEASED_DETECTORS['kw', 'mbv2'].classifier_keys
    expected = {i for i, k in enumerate(source) if k not in classifier}
    landed = [tensor_number(v) for v in model.state_dict().values()]
    assert sorted(landed) == sorted(expected)
    keys, state = list(source), model.state_dict()
    for ours, theirs in (
        ('backbone.warehouse_manager.weights.12',
         'backbone.warehouse_manager.weights.12'),
        ('backbone.conv1.conv.attention.fc2.weight',
         'backbone.features.0.0.attention.fc2.weight'),
        ('backbone.layer7.0.linear_conv.bn.running_var',
         'backbone.features.17.conv.3.running_var'),
        ('backbone.conv2.conv.attention.norm1.bias',
         'backbone.features.18.0.attention.norm1.bias'),
        ('roi_head.mask_head.conv_logits.weight',
         'roi_head.mask_head.conv_logits.weight'),
    ):
        assert tensor_number(state[ours]) == keys.index(theirs), ours


def test_another_preset_does_not_fit():
    converted = convert_released_detector(
        released_state_dict('r50', 'kw1x'), 'r50')
    _, report = compare_state_dict(
        build_detector(configs('r50', 'kw4x')[0]), converted)
    assert not report.fits and not report.missing
    assert ('backbone.warehouse_manager.weights.0', (87, 64, 64, 1, 1),
            (348, 64, 64, 1, 1)) in report.mismatched


def test_layout_errors():
    source = released_state_dict('r50', 'kw1x')
    # the other release's converter is named
    with pytest.raises(ValueError, match="release='kw'"):
        convert_released_detector(source, 'r50', release='odconv')
    # MobileNetV2 keys are not ResNet-50 keys
    with pytest.raises(KeyError, match='not part of a released KW-ResNet-50'):
        convert_released_detector(released_state_dict('mbv2', 'kw1x'), 'r50')
    bad = dict(source)
    bad['backbone.layer2.0.conv2.attention.gate.weight'] = torch.zeros(1)
    bad['backbone.classifier.weight'] = torch.zeros(1)  # MobileNetV2's
    with pytest.raises(KeyError) as err:
        convert_released_detector(bad, 'r50')
    assert 'attention.gate.weight' in str(err.value)
    assert 'backbone.classifier.weight' in str(err.value)
    # warehouses by index: a gap is an error, not a shifted load
    gap = dict(source)
    gap['backbone.warehouse_manager.weights.7'] = gap.pop(
        'backbone.warehouse_manager.weights.3')
    with pytest.raises(KeyError, match='not numbered 0..3'):
        convert_released_detector(gap, 'r50')


def test_cli(tmp_path, capsys):
    cli = importlib.import_module('tools.model_converters.kw_mmdet2_detector')
    source = released_state_dict('mbv2', 'kw4x')
    src, dst = str(tmp_path / 'released.pth'), str(tmp_path / 'out.pth')
    torch.save(
        dict(
            meta=dict(
                CLASSES=('person', 'bicycle'),
                mmcv_version='1.3.8',
                config='model = dict(...)',
                epoch=12),
            state_dict=source,
            optimizer=dict(state={}, param_groups=[])), src)
    assert cli.main([src, dst, '--arch', 'mbv2']) == 0
    assert 'MaskRCNN (mbv2)' in capsys.readouterr().out
    out = safe_torch_load(dst)
    meta = out['meta']
    assert meta['release'] == 'kw' and meta['detector'] == 'MaskRCNN'
    assert meta['dataset_meta']['classes'] == ('person', 'bicycle')
    assert meta['dropped_keys'] == list(
        RELEASED_DETECTORS['kw', 'mbv2'].classifier_keys)
    _, report = compare_state_dict(
        build_detector(configs('mbv2', 'kw4x')[0]), out['state_dict'])
    assert report.fits
    # an ODConv detector is refused, naming its release
    odconv = {
        k.replace('warehouse_manager', 'not_a_warehouse'): v
        for k, v in source.items()
    }
    torch.save(dict(state_dict=odconv), src)
    with pytest.raises(SystemExit, match="release='odconv'"):
        cli.main([src, str(tmp_path / 'no.pth'), '--arch', 'mbv2'])
    assert not osp.exists(tmp_path / 'no.pth')


def test_cli_refuses_a_malicious_file(tmp_path, monkeypatch):
    cli = importlib.import_module('tools.model_converters.kw_mmdet2_detector')
    marker = str(tmp_path / 'pwned')
    src = save_malicious_checkpoint(
        str(tmp_path / 'evil.pth'), marker,
        released_state_dict('mbv2', 'kw1x'))
    monkeypatch.setenv(UNSAFE_ENV, '1')
    dst = str(tmp_path / 'out.pth')
    with pytest.raises(SystemExit) as err:
        cli.main([src, dst, '--arch', 'mbv2'])
    assert str(err.value.code).startswith(f'error: refusing to load {src}')
    assert not osp.exists(marker) and not osp.exists(dst)
