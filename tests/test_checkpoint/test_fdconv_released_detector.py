# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Released FDConv detectors (mmdet 2.28) convert to ours and load strictly.

The released layout is rebuilt here from the release's code, independently
of our model code: ``FDConv_detection/mmdet_custom/resnet.py``
(``ResNet_FDConv``: mmdet's ResNet-50, no classifier, stem and downsample
dense, every Bottleneck conv built from ``conv_cfg``) and ``FDConv.py``
(``FDConv`` with the configs' ``kernel_num=64``, ``param_ratio=1``,
``use_fbm_if_k_in=[3]``: its ``dft_weight``, ``KSM_Global``, ``KSM_Local``
and ``FBM`` parameters and shapes; the frequency indices and FBM masks are
not persistent), under ``backbone.`` with mmdet 2.x's FPN / RPN / RoI heads
(80 COCO classes). Tensor ``i`` holds the value ``i``, so a test sees where
each one lands.
"""
import importlib
import math
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from dynconv_mmdet.checkpoint import (RELEASED_DETECTORS, compare_state_dict,
                                      convert_released_detector,
                                      format_mismatch,
                                      released_detector_release,
                                      released_detector_type, safe_torch_load)
from dynconv_mmdet.checkpoint.key_maps import (find_key_map,
                                               to_backbone_state_dict)
from dynconv_mmdet.testing.malicious import (UNSAFE_ENV,
                                             save_malicious_checkpoint)
from dynconv_mmdet.testing.release_weights import (mmdet2_head_shapes,
                                                   numbered_state_dict,
                                                   tensor_number)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KERNEL_NUM = 64
BN = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
#: detector -> our configs of the release's recipes, that the converted
#: release loads into (``fdconv_mask_rcnn_r50_fpn_1x.py`` builds the same
#: model as the Mask R-CNN one: tests/test_configs/test_configs.py)
CONFIGS = {
    'faster': ('fdconv_faster_rcnn_r50_fpn_1x.py', ),
    'mask': ('fdconv_mask_rcnn_r50_fpn_release-recipe_adamw_1x.py', ),
}


def _bn(prefix, channels):
    return {
        f'{prefix}.{name}':
        [] if name == 'num_batches_tracked' else [channels]
        for name in BN
    }


def _fdconv(prefix, cin, cout, k):
    """Keys and shapes of one released ``FDConv`` (reduction 1/16, min 16
    attention channels, param_ratio 1)."""
    hidden = max(int(cin * 0.0625), 16)
    local_k = round(math.log2(cin) / 2 + 0.5) // 2 * 2 + 1
    shapes = {f'{prefix}.dft_weight': [1, cout * k, cin * k // 2 + 1, 2]}
    g = f'{prefix}.KSM_Global'
    shapes[f'{g}.fc.weight'] = [hidden, cin, 1, 1]
    shapes.update(_bn(f'{g}.bn', hidden))
    shapes[f'{g}.relu.scale'] = [1]  # StarReLU
    shapes[f'{g}.relu.bias'] = [1]
    heads = dict(channel_fc=cin, filter_fc=cout)
    if k > 1:
        heads['spatial_fc'] = k * k
    heads['kernel_fc'] = KERNEL_NUM
    for name, out in heads.items():
        shapes[f'{g}.{name}.weight'] = [out, hidden, 1, 1]
        shapes[f'{g}.{name}.bias'] = [out]
    if k == 3:
        for i in range(3):  # k_list [2, 4, 8]
            shapes[f'{prefix}.FBM.freq_weight_conv_list.{i}.weight'] = [
                1, cin, 3, 3
            ]
            shapes[f'{prefix}.FBM.freq_weight_conv_list.{i}.bias'] = [1]
    shapes[f'{prefix}.KSM_Local.conv.weight'] = [cout * k * k, 1, local_k]
    shapes[f'{prefix}.KSM_Local.norm.weight'] = [cin]
    shapes[f'{prefix}.KSM_Local.norm.bias'] = [cin]
    return shapes


def fdconv_resnet50_shapes():
    shapes = {'conv1.weight': [64, 3, 7, 7]}
    shapes.update(_bn('bn1', 64))
    inplanes = 64
    for stage, (planes, blocks) in enumerate(
            zip((64, 128, 256, 512), (3, 4, 6, 3)), start=1):
        for b in range(blocks):
            p = f'layer{stage}.{b}'
            shapes.update(_fdconv(f'{p}.conv1', inplanes, planes, 1))
            shapes.update(_bn(f'{p}.bn1', planes))
            shapes.update(_fdconv(f'{p}.conv2', planes, planes, 3))
            shapes.update(_bn(f'{p}.bn2', planes))
            shapes.update(_fdconv(f'{p}.conv3', planes, planes * 4, 1))
            shapes.update(_bn(f'{p}.bn3', planes * 4))
            if b == 0:
                shapes[f'{p}.downsample.0.weight'] = [
                    planes * 4, inplanes, 1, 1
                ]
                shapes.update(_bn(f'{p}.downsample.1', planes * 4))
            inplanes = planes * 4
    return shapes


def released_state_dict(detector):
    """A released-layout state dict; tensor ``i`` holds the value ``i``."""
    shapes = {f'backbone.{k}': v for k, v in fdconv_resnet50_shapes().items()}
    shapes.update(
        mmdet2_head_shapes((256, 512, 1024, 2048), detector == 'mask'))
    return numbered_state_dict(shapes)


def build_detector(config, device='meta'):
    register_all_modules()
    import dynconv_mmdet  # noqa: F401
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    cfg.model.backbone.init_cfg = None
    with torch.device(device):
        return MODELS.build(cfg.model)


def test_the_release_layout_has_the_releases_counts():
    # 23,508,032 + 3,647,120 (FACTS.md, counted with the release's code)
    shapes = fdconv_resnet50_shapes()
    params = sum(
        math.prod(s) for k, s in shapes.items()
        if not k.endswith(('running_mean', 'running_var',
                           'num_batches_tracked')))
    assert params == 27_155_152


@pytest.mark.parametrize('detector', sorted(CONFIGS))
def test_released_detector_fits_our_configs(detector):
    source = released_state_dict(detector)
    assert released_detector_release(source) == 'fdconv'
    converted = convert_released_detector(source, 'r50')  # told by its keys
    assert released_detector_type(source) == ('MaskRCNN' if detector == 'mask'
                                              else 'FasterRCNN')
    # no classifier: every key is kept, with its name and its tensor
    assert converted.keys() == source.keys()
    assert all(converted[k] is source[k] for k in source)
    wrapped = {f'module.{k}': v for k, v in source.items()}
    assert convert_released_detector(wrapped, 'r50',
                                     'fdconv').keys() == converted.keys()
    for config in CONFIGS[detector]:
        _, report = compare_state_dict(build_detector(config), converted)
        assert report.fits, format_mismatch(report, 'released', config, '')
        assert not report.kept_init


def test_every_tensor_lands_in_its_place():
    source = released_state_dict('faster')
    model = build_detector(CONFIGS['faster'][0], device='cpu')
    result = model.load_state_dict(
        convert_released_detector(source, 'r50'), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    keys, state = list(source), model.state_dict()
    landed = [tensor_number(v) for v in state.values()]
    assert sorted(landed) == list(range(len(source)))
    for key in ('backbone.layer3.5.conv2.dft_weight',
                'backbone.layer1.0.conv2.FBM.freq_weight_conv_list.2.weight',
                'backbone.layer4.0.conv1.KSM_Global.relu.scale',
                'backbone.layer2.1.conv3.KSM_Local.norm.bias',
                'backbone.layer4.0.downsample.1.running_var',
                'rpn_head.rpn_reg.bias', 'roi_head.bbox_head.fc_cls.weight'):
        assert tensor_number(state[key]) == keys.index(key), key


@pytest.mark.parametrize(
    'bad_key',
    [
        'backbone.layer1.0.conv2.KSM_Global.gate.weight',
        'backbone.layer4.3.conv1.dft_weight',  # ResNet-50 has 3 blocks
        'backbone.fc.weight',  # mmdet's ResNet has no classifier
        'roi_head.bbox_head.fc_extra.weight',
        'neck.extra_convs.0.conv.weight',
    ])
def test_unknown_keys_raise(bad_key):
    source = released_state_dict('faster')
    source[bad_key] = torch.zeros(1)
    with pytest.raises(KeyError) as err:
        convert_released_detector(source, 'r50')
    assert bad_key in str(err.value)
    assert 'FDConv ResNet-50' in str(err.value)


def test_fdconv_names_only_on_block_convs():
    # the stem is dense in the release: found by the backbone key map
    source = released_state_dict('faster')
    source['backbone.conv1.dft_weight'] = torch.zeros(1)
    source['backbone.layer1.0.bn1.KSM_Local.norm.weight'] = torch.zeros(1)
    with pytest.raises(KeyError) as err:
        convert_released_detector(source, 'r50')
    message = str(err.value)
    assert '"backbone." keys' in message and '2 keys' in message
    assert 'conv1.dft_weight' in message
    assert 'layer1.0.bn1.KSM_Local.norm.weight' in message


def test_another_release_is_named():
    source = released_state_dict('mask')
    with pytest.raises(ValueError, match=r"FDConv spectra .*release='fdconv'"):
        convert_released_detector(source, 'r50', release='odconv')
    with pytest.raises(ValueError, match=r"release='fdconv'"):
        convert_released_detector(source, 'r50', release='kw')
    # a detector without spectra is not FDConv's
    dense = {k.replace('.dft_weight', '.weight'): v for k, v in source.items()}
    assert released_detector_release(dense) == 'odconv'
    with pytest.raises(
            ValueError, match=r"holds no FDConv spectra.*release='odconv'"):
        convert_released_detector(dense, 'r50', release='fdconv')
    # the release has no MobileNetV2 detector
    with pytest.raises(ValueError, match="Unknown arch 'mbv2'"):
        convert_released_detector(source, 'mbv2')
    assert set(a for r, a in RELEASED_DETECTORS if r == 'fdconv') == {'r50'}


def test_imagenet_layout_of_the_release():
    """The files of the release's convert_to_fdconv.py (torchvision names,
    converted convs as ``dft_weight``, the classifier kept) are recognised
    and keep their names; the classifier is dropped."""
    shapes = fdconv_resnet50_shapes()
    shapes.update({'fc.weight': [1000, 2048], 'fc.bias': [1000]})
    state = numbered_state_dict(shapes)
    assert find_key_map(state, 'resnet').name == 'official FDConv'
    # its MobileNetV2s are not FDConv's: another layout reads them
    assert find_key_map(state, 'mobilenet_v2').name != 'official FDConv'
    out = to_backbone_state_dict({
        f'module.{k}': v
        for k, v in state.items()
    }, 'resnet')
    assert list(out) == list(fdconv_resnet50_shapes())
    state['layer2.0.conv2.KSM_Global.extra.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match='official FDConv ResNet: layer2'):
        to_backbone_state_dict(state, 'resnet')


def test_cli(tmp_path, capsys):
    cli = importlib.import_module(
        'tools.model_converters.fdconv_mmdet2_detector')
    source = released_state_dict('mask')
    src, dst = str(tmp_path / 'released.pth'), str(tmp_path / 'out.pth')
    torch.save(
        dict(
            meta=dict(
                CLASSES=('person', 'bicycle'),
                mmdet_version='2.28.1',
                fp16=dict(loss_scaler=dict(scale=512.0, growth_tracker=0)),
                epoch=12),
            state_dict=source,
            optimizer=dict(state={}, param_groups=[])), src)
    assert cli.main([src, dst]) == 0
    assert 'MaskRCNN (r50)' in capsys.readouterr().out
    out = safe_torch_load(dst)
    meta = out['meta']
    assert meta['release'] == 'fdconv' and meta['detector'] == 'MaskRCNN'
    assert meta['dataset_meta']['classes'] == ('person', 'bicycle')
    assert meta['dropped_keys'] == []
    # what the conversion returns (which fits: see above)
    assert out['state_dict'].keys() == source.keys()
    assert all(torch.equal(out['state_dict'][k], v) for k, v in source.items())
    # an ODConv-style detector is refused, naming its release
    torch.save(
        dict(state_dict={
            k.replace('.dft_weight', '.weight'): v
            for k, v in source.items()
        }), src)
    with pytest.raises(SystemExit, match="release='odconv'"):
        cli.main([src, str(tmp_path / 'no.pth')])
    assert not osp.exists(tmp_path / 'no.pth')


def test_cli_refuses_a_malicious_file(tmp_path, monkeypatch):
    cli = importlib.import_module(
        'tools.model_converters.fdconv_mmdet2_detector')
    marker = str(tmp_path / 'pwned')
    src = save_malicious_checkpoint(
        str(tmp_path / 'evil.pth'), marker, released_state_dict('faster'))
    monkeypatch.setenv(UNSAFE_ENV, '1')
    dst = str(tmp_path / 'out.pth')
    with pytest.raises(SystemExit) as err:
        cli.main([src, dst])
    assert str(err.value.code).startswith(f'error: refusing to load {src}')
    assert not osp.exists(marker) and not osp.exists(dst)
