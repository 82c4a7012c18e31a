# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Released ODConv MMDetection 2.x detectors -> our MMDetection 3.x models.

The released layout is rebuilt here from the architecture of the official
``OD_ResNet`` / ``OD_MobileNetV2`` detection backbones (which keep their
ImageNet classifier) and MMDetection 2.x's FPN / RPN / RoI head names and
shapes (80 COCO classes), independently of our model code. Tensors are
scalar views expanded to their shape, each with its own value, so that
checkpoints stay tiny and we can tell where every tensor ended up.
"""
import importlib
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from dynconv_mmdet.checkpoint import (CLASSIFIER_KEYS,
                                      convert_released_detector,
                                      released_detector_type)
from dynconv_mmdet.testing.release_weights import (mmdet2_head_shapes,
                                                   numbered_state_dict,
                                                   tensor_number)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NUM_CLASSES = 80
KERNEL_NUM = 4
BN = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
MBV2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                 (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _bn(prefix, channels):
    return {
        f'{prefix}.{name}':
        [] if name == 'num_batches_tracked' else [channels]
        for name in BN
    }


def _odconv(prefix, cin, cout, k, groups=1):
    """Keys and shapes of one official ODConv2d (reduction 1/16, min 16)."""
    hidden = max(int(cin * 0.0625), 16)
    shapes = {
        f'{prefix}.weight': [KERNEL_NUM, cout, cin // groups, k, k],
        f'{prefix}.attention.fc.weight': [hidden, cin, 1, 1],
        f'{prefix}.attention.channel_fc.weight': [cin, hidden, 1, 1],
        f'{prefix}.attention.channel_fc.bias': [cin],
    }
    shapes.update(_bn(f'{prefix}.attention.bn', hidden))
    heads = dict(kernel_fc=KERNEL_NUM)
    if not (cin == groups == cout):
        heads['filter_fc'] = cout
    if k > 1:
        heads['spatial_fc'] = k * k
    for name, out in heads.items():
        shapes[f'{prefix}.attention.{name}.weight'] = [out, hidden, 1, 1]
        shapes[f'{prefix}.attention.{name}.bias'] = [out]
    return shapes


def od_resnet50_shapes():
    shapes = {'conv1.weight': [64, 3, 7, 7]}
    shapes.update(_bn('bn1', 64))
    inplanes = 64
    for stage, (planes, blocks) in enumerate(
            zip((64, 128, 256, 512), (3, 4, 6, 3)), start=1):
        for b in range(blocks):
            p = f'layer{stage}.{b}'
            shapes.update(_odconv(f'{p}.conv1', inplanes, planes, 1))
            shapes.update(_odconv(f'{p}.conv2', planes, planes, 3))
            shapes.update(_odconv(f'{p}.conv3', planes, planes * 4, 1))
            for i, c in enumerate((planes, planes, planes * 4), start=1):
                shapes.update(_bn(f'{p}.bn{i}', c))
            if b == 0:
                shapes[f'{p}.downsample.0.weight'] = [
                    planes * 4, inplanes, 1, 1
                ]
                shapes.update(_bn(f'{p}.downsample.1', planes * 4))
            inplanes = planes * 4
    shapes.update({'fc.weight': [1000, 2048], 'fc.bias': [1000]})
    return shapes


def od_mobilenetv2_shapes():
    shapes = {'features.0.0.weight': [32, 3, 3, 3]}
    shapes.update(_bn('features.0.1', 32))
    inp, idx = 32, 1
    for t, c, n, _ in MBV2_SETTINGS:
        for _ in range(n):
            hidden, pos = inp * t, 0
            p = f'features.{idx}.conv'
            if t != 1:
                shapes.update(_odconv(f'{p}.0.0', inp, hidden, 1))
                shapes.update(_bn(f'{p}.0.1', hidden))
                pos = 1
            shapes.update(
                _odconv(f'{p}.{pos}.0', hidden, hidden, 3, groups=hidden))
            shapes.update(_bn(f'{p}.{pos}.1', hidden))
            shapes.update(_odconv(f'{p}.{pos + 1}', hidden, c, 1))
            shapes.update(_bn(f'{p}.{pos + 2}', c))
            inp, idx = c, idx + 1
    shapes.update(_odconv('features.18.0', 320, 1280, 1))
    shapes.update(_bn('features.18.1', 1280))
    shapes.update({
        'classifier.1.weight': [1000, 1280],
        'classifier.1.bias': [1000]
    })
    return shapes


def released_state_dict(arch, detector):
    """A released-layout state dict; tensor ``i`` holds the value ``i``."""
    if arch == 'r50':
        backbone, channels = od_resnet50_shapes(), (256, 512, 1024, 2048)
    else:
        backbone, channels = od_mobilenetv2_shapes(), (24, 32, 96, 1280)
    shapes = {f'backbone.{k}': v for k, v in backbone.items()}
    shapes.update(
        mmdet2_head_shapes(channels, detector == 'mask', NUM_CLASSES))
    return numbered_state_dict(shapes)


def build_detector(arch, detector):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    import dynconv_mmdet  # noqa: F401
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs',
                 f'odconv4x_{detector}_rcnn_{arch}_fpn_1x.py'))
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


def _check_loads(arch, detector, converted, source):
    model = build_detector(arch, detector)
    result = model.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # every released tensor except the classifier landed in exactly one
    # place of the model, unchanged
    expected = {
        i
        for i, key in enumerate(source) if key not in CLASSIFIER_KEYS[arch]
    }
    landed = [tensor_number(v) for v in model.state_dict().values()]
    assert sorted(landed) == sorted(expected)
    # neck and heads keep their names
    keys = list(source)
    state = model.state_dict()
    for key in ('neck.lateral_convs.3.conv.weight',
                'roi_head.bbox_head.fc_cls.weight', 'rpn_head.rpn_reg.bias'):
        assert tensor_number(state[key]) == keys.index(key)


@pytest.mark.parametrize('arch, detector', [('r50', 'faster'),
                                            ('mbv2', 'mask')])
def test_convert_and_load_strict(arch, detector):
    source = released_state_dict(arch, detector)
    converted = convert_released_detector(source, arch)
    assert released_detector_type(source) == ('MaskRCNN' if detector == 'mask'
                                              else 'FasterRCNN')
    assert not any(k in converted for k in CLASSIFIER_KEYS[arch])
    assert len(converted) == len(source) - 2
    _check_loads(arch, detector, converted, source)
    # a DataParallel ``module.`` prefix is accepted
    wrapped = {f'module.{k}': v for k, v in source.items()}
    assert convert_released_detector(wrapped, arch).keys() == converted.keys()


@pytest.mark.parametrize('arch, bad_key', [
    ('r50', 'roi_head.bbox_head.fc_extra.weight'),
    ('r50', 'neck.extra_convs.0.conv.weight'),
    ('r50', 'backbone.layer1.3.conv1.weight'),
    ('r50', 'backbone.layer2.0.conv2.attention.gate.weight'),
    ('r50', 'backbone.classifier.1.weight'),
    ('mbv2', 'backbone.fc.weight'),
    ('mbv2', 'backbone.features.19.0.weight'),
    ('mbv2', 'bbox_head.fc_cls.weight'),
])
def test_unknown_keys_raise(arch, bad_key):
    source = released_state_dict(arch, 'faster')
    source[bad_key] = torch.zeros(1)
    with pytest.raises(KeyError) as e:
        convert_released_detector(source, arch)
    if bad_key == 'backbone.features.19.0.weight':
        # found by the backbone converter
        assert '"backbone." keys' in str(e.value)
        assert 'features.19.0.weight' in str(e.value)
    else:
        assert bad_key in str(e.value)
    # all unknown keys are listed together
    source['roi_head.foo'] = torch.zeros(1)
    with pytest.raises(KeyError) as e:
        convert_released_detector(source, arch)
    assert 'roi_head.foo' in str(e.value)
    if bad_key != 'backbone.features.19.0.weight':
        assert bad_key in str(e.value)


def test_bad_inputs_raise():
    source = released_state_dict('mbv2', 'faster')
    with pytest.raises(ValueError, match='Unknown arch'):
        convert_released_detector(source, 'r101')
    with pytest.raises(ValueError, match="checkpoint\\['state_dict'\\]"):
        convert_released_detector({'state_dict': source}, 'mbv2')
    heads_only = {
        k: v
        for k, v in source.items() if not k.startswith('backbone.')
    }
    with pytest.raises(ValueError, match='No "backbone." keys'):
        convert_released_detector(heads_only, 'mbv2')
    # the r50 layout is not accepted as mbv2
    with pytest.raises(KeyError):
        convert_released_detector(released_state_dict('r50', 'faster'), 'mbv2')


def test_cli(tmp_path):
    cli = importlib.import_module(
        'tools.model_converters.odconv_mmdet2_detector')
    source = released_state_dict('mbv2', 'mask')
    src, dst = str(tmp_path / 'released.pth'), str(tmp_path / 'out.pth')
    torch.save(
        dict(
            meta=dict(CLASSES=('person', 'bicycle'), mmdet_version='2.11.0'),
            state_dict=source,
            optimizer=dict(state={}, param_groups=[])), src)
    assert cli.main([src, dst, '--arch', 'mbv2']) == 0
    out = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(out) == {'state_dict', 'meta'}
    meta = out['meta']
    assert meta['arch'] == 'mbv2' and meta['detector'] == 'MaskRCNN'
    assert meta['dataset_meta']['classes'] == ('person', 'bicycle')
    assert meta['dropped_keys'] == list(CLASSIFIER_KEYS['mbv2'])
    _check_loads('mbv2', 'mask', out['state_dict'], source)
