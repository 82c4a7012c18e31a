"""ImageNet weights load exactly into the dynamic backbones, or fail loudly.

Official ODConv checkpoints are built from the released key lists
(tests/data/official_keys); the reference "official model" is torchvision's
ResNet / MobileNetV2 with its convs replaced by ODConv2d, which has the
released module structure and key names.
"""
import os.path as osp
import pickle
import re

import pytest
import torch
import torch.nn as nn
import torchvision
from mmdet.registry import MODELS
from mmengine.registry import MODELS as ROOT_MODELS

import dynconv_mmdet.checkpoint.backbone as backbone_loader
from dynconv_mmdet.checkpoint import (CheckpointError, CheckpointMismatchError,
                                      convert_official_state_dict,
                                      load_pretrained, safe_torch_load)
from dynconv_mmdet.models.layers import (CondConv2d, DyConv2d, DynamicConv2d,
                                         ODConv2d)

DATA_DIR = osp.join(osp.dirname(__file__), '..', 'data')

OFFICIAL = {
    'od_resnet18_4x': ('resnet', 18, 4),
    'od_resnet50_1x': ('resnet', 50, 1),
    'od_resnet50_4x': ('resnet', 50, 4),
    'od_resnet101_2x': ('resnet', 101, 2),
    'od_mobilenetv2_050_4x': ('mobilenet_v2', 0.5, 4),
    'od_mobilenetv2_075_1x': ('mobilenet_v2', 0.75, 1),
    'od_mobilenetv2_100_4x': ('mobilenet_v2', 1.0, 4),
}


def read_key_list(name):
    shapes = {}
    path = osp.join(DATA_DIR, 'official_keys', f'{name}.txt')
    for line in open(path):
        if line.startswith('#') or not line.strip():
            continue
        key, shape = line.rstrip('\n').split('\t')
        shapes[key] = [int(s) for s in re.findall(r'\d+', shape)]
    return shapes


def random_tensor(key, shape, gen):
    if key.endswith('num_batches_tracked'):
        return torch.tensor(7)
    if key.endswith('running_var'):
        return torch.rand(shape, generator=gen) + 0.5
    if key.endswith(('running_mean', '.bias')):
        return torch.randn(shape, generator=gen) * 0.1
    if len(shape) >= 4:
        fan_in = shape[-3] * shape[-2] * shape[-1]
        return torch.randn(shape, generator=gen) / fan_in**0.5
    return torch.rand(shape, generator=gen) + 0.5


def official_checkpoint(name, path):
    gen = torch.Generator().manual_seed(0)
    state = {
        'module.' + k: random_tensor(k, s, gen)
        for k, s in read_key_list(name).items()
    }
    torch.save(
        dict(
            epoch=100,
            state_dict=state,
            acc=78.5,
            best_acc=78.5,
            optimizer=dict(state={}, param_groups=[dict(lr=0.0)])), path)
    return state


def build_backbone(arch, size, kernel_num, **kwargs):
    dynamic = dict(conv_cfg=dict(type='ODConv2d', kernel_num=kernel_num))
    if arch == 'resnet':
        cfg = dict(type='DynamicResNet', depth=size, frozen_stages=-1)
    else:
        cfg = dict(type='DynamicMobileNetV2', widen_factor=size)
    return MODELS.build(
        dict(**cfg, preset='odconv1x', dynamic=dynamic, **kwargs))


def _replace_convs(module, kernel_num, skip):
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d) and child not in skip:
            setattr(
                module, name,
                ODConv2d(
                    child.in_channels,
                    child.out_channels,
                    child.kernel_size,
                    child.stride,
                    child.padding,
                    child.dilation,
                    child.groups,
                    kernel_num=kernel_num))
        else:
            _replace_convs(child, kernel_num, skip)


def official_model_features(arch, size, kernel_num, state, x):
    """Features of the released architecture at the FPN taps."""
    if arch == 'resnet':
        model = getattr(torchvision.models, f'resnet{size}')()
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            skip = {b.downsample[0] for b in layer if b.downsample}
            _replace_convs(layer, kernel_num, skip)
    else:
        model = torchvision.models.mobilenet_v2(width_mult=size)
        _replace_convs(model.features, kernel_num, {model.features[0][0]})
    model.load_state_dict({k[len('module.'):]: v for k, v in state.items()})
    model.eval()
    feats = []
    with torch.no_grad():
        if arch == 'resnet':
            h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
            for layer in (model.layer1, model.layer2, model.layer3,
                          model.layer4):
                h = layer(h)
                feats.append(h)
        else:
            h = x
            for i, block in enumerate(model.features):
                h = block(h)
                if i in (3, 6, 13, 18):
                    feats.append(h)
    return feats


@pytest.mark.parametrize('name', sorted(OFFICIAL))
def test_official_release_loads_exactly(name, tmp_path):
    arch, size, kernel_num = OFFICIAL[name]
    path = str(tmp_path / f'{name}.pth')
    state = official_checkpoint(name, path)
    backbone = build_backbone(
        arch,
        size,
        kernel_num,
        init_cfg=dict(type='Pretrained', checkpoint=path))
    # the pure converter gives exactly the backbone's keys
    converted = convert_official_state_dict(state, arch)
    assert set(converted) == set(backbone.state_dict())
    backbone.init_weights()
    loaded = backbone.state_dict()
    for key, value in converted.items():
        assert torch.equal(loaded[key], value), key
    backbone.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours = backbone(x)
    ref = official_model_features(arch, size, kernel_num, state, x)
    assert len(ours) == len(ref) == 4
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_converter_is_pure_and_raises_on_unknown_keys():
    state = {
        'module.layer1.0.conv1.weight': torch.zeros(1),
        'module.fc.weight': torch.zeros(1)
    }
    out = convert_official_state_dict(state, 'resnet')
    assert out == {
        'layer1.0.conv1.weight': state['module.layer1.0.conv1.weight']
    }
    assert 'module.fc.weight' in state  # input untouched
    with pytest.raises(KeyError, match='layer1.0.se.weight'):
        convert_official_state_dict({'layer1.0.se.weight': torch.zeros(1)},
                                    'resnet')
    with pytest.raises(KeyError, match='features.19'):
        convert_official_state_dict({'features.19.0.weight': torch.zeros(1)},
                                    'mobilenet_v2')
    with pytest.raises(ValueError, match='arch'):
        convert_official_state_dict({}, 'vgg')


def test_mmpretrain_layout_loads(tmp_path):
    source = build_backbone('resnet', 18, 4)
    for p in source.parameters():
        nn.init.normal_(p)
    state = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(10, 512)
    state['data_preprocessor.mean'] = torch.zeros(3)
    path = str(tmp_path / 'epoch_1.pth')
    torch.save(dict(meta=dict(epoch=1), state_dict=state), path)
    target = build_backbone(
        'resnet', 18, 4, init_cfg=dict(type='Pretrained', checkpoint=path))
    target.init_weights()
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v), k


def _dense_resnet18(tmp_path):
    dense = torchvision.models.resnet18().eval()
    for m in dense.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.running_var, 0.5, 1.5)
            nn.init.normal_(m.running_mean, std=0.1)
    path = str(tmp_path / 'resnet18_dense.pth')
    torch.save(dense.state_dict(), path)
    return dense, path


def test_dense_checkpoint_initialises_dyconv_exactly(tmp_path):
    dense, path = _dense_resnet18(tmp_path)
    model = MODELS.build(
        dict(
            type='DynamicResNet',
            depth=18,
            preset='dyconv4x',
            init_cfg=dict(type='Pretrained', checkpoint=path)))
    report = load_pretrained(model, path, arch='resnet')
    assert len(report.expanded) == 8 * 2 + 3  # every dynamic conv
    assert not (report.missing or report.unexpected or report.mismatched)
    assert all('attention' in k for k in report.kept_init
               if not k.endswith('num_batches_tracked'))
    # every kernel is the dense kernel and softmax weights sum to 1, so the
    # dynamic backbone starts as exactly the dense network
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = model(x)[-1]
        ref = dense.layer4(
            dense.layer3(
                dense.layer2(
                    dense.layer1(
                        dense.maxpool(dense.relu(dense.bn1(
                            dense.conv1(x))))))))
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_dense_start_of_odconv_and_condconv(tmp_path):
    weight = torch.randn(8, 8, 3, 3)
    x = torch.randn(2, 8, 6, 6)
    od = ODConv2d(8, 8, 3, padding=1, kernel_num=4).eval()
    od.weight.data.copy_(weight.expand(4, -1, -1, -1, -1))
    a = od.compute_attention(x)
    # ODConv starts as a_f * conv(x * a_c, a_s * W_dense)
    for b in range(2):
        expected = nn.functional.conv2d(
            x[b:b + 1] * a.in_channel[b].view(1, -1, 1, 1),
            weight * a.spatial[b].view(1, 1, 3, 3),
            padding=1) * a.out_channel[b].view(1, -1, 1, 1)
        torch.testing.assert_close(
            od(x)[b:b + 1], expected, rtol=1e-4, atol=1e-5)
    cond = CondConv2d(8, 8, 3, padding=1, num_experts=8).eval()
    cond.weight.data.copy_(weight.expand(8, -1, -1, -1, -1))
    r = cond.compute_attention(x).kernel
    # CondConv starts as the dense conv scaled by sum_i r_i(x)
    expected = nn.functional.conv2d(
        x, weight, padding=1) * r.sum(1).view(2, 1, 1, 1)
    torch.testing.assert_close(cond(x), expected, rtol=1e-4, atol=1e-5)


def test_dense_mobilenet_v2_initialises_odconv(tmp_path):
    dense = torchvision.models.mobilenet_v2()
    path = str(tmp_path / 'mbv2.pth')
    torch.save(dense.state_dict(), path)
    model = MODELS.build(dict(type='DynamicMobileNetV2', preset='odconv4x'))
    report = load_pretrained(model, path, arch='mobilenet_v2')
    dynamic = [n for n, m in model.named_modules() if isinstance(m, ODConv2d)]
    assert len(dynamic) == 2 + 16 * 3 + 1  # every conv but the stem
    assert sorted(report.expanded) == sorted(f'{n}.weight' for n in dynamic)
    assert not (report.missing or report.unexpected or report.mismatched)
    assert torch.equal(model.layer7[0].linear_conv.conv.weight[3],
                       dense.features[17].conv[2].weight)


def test_mismatches_are_errors(tmp_path):
    path = str(tmp_path / 'od_resnet18_4x.pth')
    official_checkpoint('od_resnet18_4x', path)
    one_kernel = build_backbone('resnet', 18, 1)
    with pytest.raises(
            CheckpointMismatchError,
            match=r'layer1.0.conv1.weight: \(4, 64, 64, 3, 3\) '
            r'vs \(1, 64, 64, 3, 3\)'):
        load_pretrained(one_kernel, path, arch='resnet')
    with pytest.raises(CheckpointMismatchError, match='od_resnet18_4x.pth'):
        load_pretrained(build_backbone('resnet', 34, 4), path, arch='resnet')
    # a missing key is listed
    state = safe_torch_load(path)['state_dict']
    del state['module.layer2.1.bn2.weight']
    torch.save(state, path)
    four = build_backbone('resnet', 18, 4)
    with pytest.raises(
            CheckpointMismatchError,
            match='missing in the checkpoint.*\n.*layer2.1.bn2'):
        load_pretrained(four, path, arch='resnet')
    # ... unless the user opts out explicitly
    report = load_pretrained(four, path, arch='resnet', strict=False)
    assert report.missing == ['layer2.1.bn2.weight']
    state['module.layer9.0.conv1.weight'] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError, match='layer9.0.conv1'):
        load_pretrained(four, path, arch='resnet')


def test_pretrained_through_init_cfg_raises(tmp_path):
    path = str(tmp_path / 'od_resnet18_4x.pth')
    official_checkpoint('od_resnet18_4x', path)
    model = build_backbone(
        'resnet', 18, 1, init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointMismatchError):
        model.init_weights()
    lenient = build_backbone(
        'resnet',
        18,
        1,
        strict_pretrained=False,
        init_cfg=dict(type='Pretrained', checkpoint=path))
    lenient.init_weights()  # loads what fits (BN, stem), warns


class Smuggled:

    def __reduce__(self):
        return (print, ('this must not run', ))


def test_unsafe_and_broken_files_are_refused(tmp_path):
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': Smuggled()}, str(evil))
    with pytest.raises(CheckpointError, match='refusing to load'):
        safe_torch_load(str(evil))
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint at all')
    with pytest.raises(CheckpointError, match='not a PyTorch checkpoint'):
        safe_torch_load(str(junk))
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        safe_torch_load(str(tmp_path / 'nowhere.pth'))
    listed = tmp_path / 'list.pth'
    torch.save([torch.zeros(1)], str(listed))
    with pytest.raises(CheckpointError, match='list'):
        safe_torch_load(str(listed))
    raw = tmp_path / 'raw.pkl'
    raw.write_bytes(pickle.dumps({'a': 1}))
    with pytest.raises(CheckpointError):
        safe_torch_load(str(raw))


def test_official_converter_cli(tmp_path):
    import subprocess
    import sys
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    src = str(tmp_path / 'od_mobilenetv2_075_1x.pth.tar')
    state = official_checkpoint('od_mobilenetv2_075_1x', src)
    dst = str(tmp_path / 'out' / 'odconv1x_mobilenetv2-0.75_in1k.pth')
    tool = osp.join(repo, 'tools', 'model_converters',
                    'odconv_official_to_backbone.py')
    cmd = [
        sys.executable, tool, src, dst, '--arch', 'mobilenet_v2',
        '--widen-factor', '0.75', '--kernel-num', '1'
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    out = safe_torch_load(dst)
    assert out['meta']['arch'] == 'mobilenet_v2'
    backbone = build_backbone(
        'mobilenet_v2',
        0.75,
        1,
        init_cfg=dict(type='Pretrained', checkpoint=dst))
    backbone.init_weights()
    assert torch.equal(
        backbone.state_dict()['layer7.0.linear_conv.conv.weight'],
        state['module.features.17.conv.2.weight'])
    # a wrong kernel number is caught before anything is written
    wrong = str(tmp_path / 'wrong.pth')
    cmd[3], cmd[-1] = wrong, '4'
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode != 0 and 'does not fit' in result.stderr
    assert not osp.exists(wrong)


def _record_loads(monkeypatch):
    """Record the reports of the strict loader."""
    reports = []
    real = backbone_loader.load_pretrained

    def spy(*args, **kwargs):
        reports.append(real(*args, **kwargs))
        return reports[-1]

    monkeypatch.setattr(backbone_loader, 'load_pretrained', spy)
    return reports


def test_pretrained_argument_takes_the_strict_loader(tmp_path, monkeypatch):
    """mmdet's ``pretrained=P`` (``init_cfg=dict(type='Pretrained',
    checkpoint=P)``) starts the dynamic convs from the dense weights."""
    # a dense ResNet-50 of mmdet (torchvision's key names), 16 base channels
    dense = MODELS.build(
        dict(type='DynamicResNet', depth=50, base_channels=16))
    for p in dense.parameters():
        nn.init.normal_(p)
    path = str(tmp_path / 'resnet50_dense.pth')
    torch.save(dense.state_dict(), path)
    reports = _record_loads(monkeypatch)
    model = MODELS.build(
        dict(
            type='DynamicResNet',
            depth=50,
            base_channels=16,
            preset='odconv1x',
            pretrained=path))
    model.init_weights()
    assert len(reports) == 1 and reports[0].fits
    # every block conv of the 16 Bottlenecks started from the dense kernel
    assert len(reports[0].expanded) == 16 * 3
    assert torch.equal(model.layer3[2].conv2.weight[0],
                       dense.layer3[2].conv2.weight)
    assert torch.equal(model.layer4[0].bn3.weight, dense.layer4[0].bn3.weight)
    assert torch.equal(model.conv1.weight, dense.conv1.weight)


def test_pretrained_argument_refuses_a_wrong_file(tmp_path):
    path = str(tmp_path / 'od_resnet18_4x.pth')
    official_checkpoint('od_resnet18_4x', path)
    model = MODELS.build(
        dict(
            type='DynamicResNet', depth=18, preset='odconv1x',
            pretrained=path))
    with pytest.raises(
            CheckpointMismatchError,
            match=r'(?s)shape mismatch.*layer1.0.conv1.weight: '
            r'\(4, 64, 64, 3, 3\) vs \(1, 64, 64, 3, 3\)'):
        model.init_weights()
    with pytest.raises(ValueError, match='either `pretrained` or `init_cfg`'):
        MODELS.build(
            dict(
                type='DynamicResNet',
                depth=18,
                pretrained=path,
                init_cfg=dict(type='Pretrained', checkpoint=path)))


class _HalfDense(DyConv2d):
    """A family whose dense start is half the dense kernel."""

    def init_from_dense(self, weight):
        self.weight.data.copy_(0.5 * weight.expand_as(self.weight))
        return [self.weight]


class _NoDenseStart(DynamicConv2d):
    """A family that keeps its kernels elsewhere and refuses a dense
    start."""

    def __init__(self, in_channels, out_channels, kernel_size, **kwargs):
        super().__init__(
            in_channels, out_channels, kernel_size, num_kernels=None, **kwargs)
        self.cells = nn.Parameter(torch.zeros(2, self.kernel_numel))

    def init_weights(self):
        nn.init.normal_(self.cells)

    def init_from_dense(self, weight):
        raise ValueError('its cells are shared, no dense start')


@pytest.fixture
def families():
    names = ('_HalfDenseForTest', '_NoDenseStartForTest')
    for name, cls in zip(names, (_HalfDense, _NoDenseStart)):
        ROOT_MODELS.register_module(name=name, module=cls, force=True)
    yield names
    for name in names:
        ROOT_MODELS._module_dict.pop(name)


def _stage4(conv_type):
    return MODELS.build(
        dict(
            type='DynamicResNet',
            depth=18,
            dynamic=dict(
                conv_cfg=dict(type=conv_type),
                stages=(False, False, False, True))))


def test_dense_start_is_asked_of_the_conv_family(tmp_path, families):
    dense, path = _dense_resnet18(tmp_path)
    half = _stage4(families[0])
    report = load_pretrained(half, path, arch='resnet')
    assert sorted(report.expanded) == sorted(f'layer4.{b}.conv{c}.weight'
                                             for b in range(2) for c in (1, 2))
    assert torch.equal(half.layer4[1].conv2.weight[3],
                       0.5 * dense.layer4[1].conv2.weight)

    refusing = _stage4(families[1])
    with pytest.raises(CheckpointMismatchError) as err:
        load_pretrained(refusing, path, arch='resnet')
    message = str(err.value)
    assert 'dense start refused by the conv family (4)' in message
    assert ('layer4.0.conv1.weight: its cells are shared, no dense start'
            in message)
    assert 'missing in the checkpoint (4)' in message  # the cells
