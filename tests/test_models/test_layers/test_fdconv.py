"""FDConv2d: the release's numbers (vectors in tests/data/fdconv), its
rules, what its users hit, the dense start and frozen stages."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer

from dynconv_mmdet.models.layers import DynamicConv2d, FDConv2d
from dynconv_mmdet.models.layers.fdconv import (dense_to_spectrum,
                                                frequency_groups)

DATA = osp.join(osp.dirname(__file__), '..', '..', 'data', 'fdconv')
with open(osp.join(DATA, 'cases.json')) as f:
    CASES = json.load(f)


def load_case(name):
    arrays = np.load(osp.join(DATA, f'{name}.npz'))
    return {k: torch.from_numpy(arrays[k]) for k in arrays.files}


def release_layer(name, data):
    layer = FDConv2d(**CASES[name]['kwargs'])
    state = {
        k[len('state_dict.'):]: v
        for k, v in data.items() if k.startswith('state_dict.')
    }
    layer.load_state_dict(state, strict=True)
    return layer


def run(layer, x, g):
    x = x.clone().requires_grad_(True)
    out = layer(x)
    params = dict(layer.named_parameters())
    grads = torch.autograd.grad((out * g).sum(), [x, *params.values()])
    return out.detach(), grads[0], dict(zip(params, grads[1:]))


def close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------
# Exact to the release
@pytest.mark.parametrize('name', sorted(CASES))
def test_equals_release_vectors(name):
    data = load_case(name)
    layer = release_layer(name, data)
    x, g = data['x'], data['g']
    if 'out_train' in data:
        out, grad_x, grads = run(layer.train(), x, g)
        close(out, data['out_train'])
        close(grad_x, data['grad_x_train'])
        for key, grad in grads.items():
            close(grad, data[f'grad_train.{key}'])
    else:
        # the release fails on one image in training; ours trains, its
        # attention BatchNorm using the running statistics: the eval numbers
        out, grad_x, _ = run(layer.train(), x, g)
        close(out, data['out_eval'])
        close(grad_x, data['grad_x_eval'])
    out, grad_x, grads = run(layer.eval(), x, g)
    close(out, data['out_eval'])
    close(grad_x, data['grad_x_eval'])
    for key, grad in grads.items():
        close(grad, data[f'grad_eval.{key}'])
    with torch.no_grad():
        close(layer(x), data['out_eval'])


def test_release_parameter_names_and_counts():
    layer = FDConv2d(64, 64, 3, padding=1, kernel_num=64)
    sizes = {k: v.numel() for k, v in layer.named_parameters()}
    assert sum(sizes.values()) == 46_462  # FACTS.md, counted on the release
    assert sizes['dft_weight'] == 37_248
    assert sizes['KSM_Local.conv.weight'] == 2_880
    assert sizes['FBM.freq_weight_conv_list.0.weight'] + \
        sizes['FBM.freq_weight_conv_list.0.bias'] == 577
    assert not any('indices' in k or 'mask' in k or 'group' in k
                   for k in layer.state_dict())
    assert layer.num_kernels == 64 and 'num_kernels=64' in repr(layer)


# --------------------------------------------------------------------------
# Rules: what stays dense
@pytest.mark.parametrize('args,kwargs,reason', [
    ((16, 64, 3), {}, 'use_fdconv_if_c_gt'),
    ((64, 64, 5), dict(padding=2), 'use_fdconv_if_k_in'),
    ((64, 64, 3), dict(groups=64, padding=1), 'groups'),
    ((64, 128, 3), dict(groups=2, padding=1), 'groups'),
])
def test_release_rules_leave_convs_dense(args, kwargs, reason):
    layer = build_conv_layer(
        dict(type='FDConv2d', kernel_num=64), *args, **kwargs)
    assert layer.is_dense and reason in layer.dense_reason
    assert set(dict(layer.named_parameters())) == {'weight'}
    x = torch.randn(2, args[0], 6, 6)
    torch.testing.assert_close(
        layer(x),
        F.conv2d(x, layer.weight, None, layer.stride, layer.padding,
                 layer.dilation, layer.groups))
    assert layer.flops(x.shape)['aggregation'] == 0


def test_strided_convs_are_fdconv_as_released():
    # use_fdconv_if_stride_in is stored but never checked by the release
    layer = FDConv2d(64, 64, 3, stride=2, padding=1, kernel_num=64)
    assert not layer.is_dense and hasattr(layer, 'FBM')
    assert not hasattr(FDConv2d(64, 256, 1, kernel_num=64), 'FBM')


# --------------------------------------------------------------------------
# What the release's users hit
def test_widths_that_break_the_grouping():
    # 96 channels with kernel_num 64: 288 * 145 frequencies, not divisible
    layer = FDConv2d(96, 96, 3, padding=1, kernel_num=64)
    sizes = torch.bincount(layer.group_index)
    assert sizes.numel() == 64 and sizes.max() - sizes.min() == 1
    assert layer(torch.randn(2, 96, 5, 5)).shape == (2, 96, 5, 5)
    # where the release works, its equal contiguous groups
    groups = frequency_groups(48, 24, 16)
    assert torch.bincount(groups).tolist() == [48 * 13 // 16] * 16
    with pytest.raises(
            ValueError, match='kernel_num=64.*nearest valid.*'
            'kernel_num=40'):
        FDConv2d(8, 8, 1, kernel_num=64, use_fdconv_if_c_gt=0)


def test_odd_input_width_and_one_group():
    # odd C_in * k: irfft2 with the size given
    layer = FDConv2d(17, 20, 1, kernel_num=4)
    dense = torch.randn(20, 17, 1, 1)
    layer.init_from_dense(dense)
    torch.testing.assert_close(
        layer.spectral_kernels(torch.full((1, 4), 0.25))[0],
        dense,
        rtol=1e-5,
        atol=1e-6)
    one = FDConv2d(32, 32, 3, padding=1, kernel_num=1)
    assert one.KSM_Global.kernel_fc is None
    out = one.train()(torch.randn(3, 32, 5, 5))
    out.sum().backward()
    assert one.dft_weight.grad is not None


def test_single_image_training_keeps_statistics():
    layer = FDConv2d(32, 32, 3, padding=1, kernel_num=16).train()
    before = layer.KSM_Global.bn.running_mean.clone()
    x = torch.randn(1, 32, 6, 6, requires_grad=True)
    layer(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(layer.KSM_Global.bn.running_mean, before)


def test_bf16_autocast_runs_the_transforms_in_float32():
    layer = FDConv2d(32, 32, 3, padding=1, kernel_num=16).train()
    x = torch.randn(2, 32, 6, 6)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x.bfloat16())
        assert layer.spectral_kernels(torch.rand(
            2, 16, dtype=torch.bfloat16)).dtype == torch.float32
        assert layer.FBM(x.bfloat16()).dtype == torch.float32
    assert torch.isfinite(out.float()).all()
    out.float().sum().backward()
    assert all(p.grad is not None for p in layer.parameters())
    ref = layer(x)
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max()


def test_gradcheck_float64():
    layer = FDConv2d(
        4, 6, 3, padding=1, bias=True, kernel_num=4,
        use_fdconv_if_c_gt=0).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(2, 4, 3, 3, dtype=torch.double, requires_grad=True)
    params = [p for p in layer.parameters()]
    assert torch.autograd.gradcheck(
        lambda inp, *ps: layer.train()(inp), (x, *params),
        eps=1e-6,
        atol=1e-5,
        fast_mode=True)


# --------------------------------------------------------------------------
# Init, dense start, frozen stages
def test_init_quirk_and_neutral_switch():
    quirk = FDConv2d(64, 64, 3, padding=1, kernel_num=64)
    neutral = FDConv2d(
        64, 64, 3, padding=1, kernel_num=64, neutral_filter_init=True)
    for layer in (quirk, neutral):
        ksm = layer.KSM_Global
        for head in (ksm.channel_fc, ksm.spatial_fc, ksm.kernel_fc):
            assert head.weight.abs().max() < 1e-4
    assert quirk.KSM_Global.filter_fc.weight.std() > 0.1  # Kaiming fan-out
    assert neutral.KSM_Global.filter_fc.weight.abs().max() < 1e-4
    dense = nn.Conv2d(64, 64, 3, padding=1, bias=False)
    x = torch.randn(2, 64, 8, 8)
    for layer in (quirk, neutral):
        layer.init_from_dense(dense.weight)
        layer.eval()
    with torch.no_grad():
        ref = dense(x)
        err_quirk = (quirk(x) - ref).abs().max()
        err_neutral = (neutral(x) - ref).abs().max()
    assert err_neutral < 1e-3 * ref.abs().max() < err_quirk


def test_init_from_dense_is_the_release_conversion():
    layer = FDConv2d(32, 48, 3, padding=1, kernel_num=16, param_ratio=2)
    dense = torch.randn(48, 32, 3, 3)
    assert layer.init_from_dense(dense) == [layer.dft_weight]
    matrix = dense.permute(0, 2, 1, 3).reshape(48 * 3, 32 * 3)
    spectrum = torch.fft.rfft2(matrix)
    expected = torch.stack([spectrum.real, spectrum.imag], -1) / 16
    torch.testing.assert_close(layer.dft_weight,
                               expected.expand(2, -1, -1, -1))
    torch.testing.assert_close(dense_to_spectrum(dense, 2), layer.dft_weight)
    # the neutral kernel attention (2 * sigmoid(0) / (P K)) gives it back,
    # once per copy (P times, as the release's conversion repeats it)
    kernels = layer.spectral_kernels(torch.full((1, 32), 1 / 32))
    torch.testing.assert_close(kernels[0], 2 * dense, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='does not fit'):
        layer.init_from_dense(torch.randn(48, 32, 1, 1))


def test_dense_imagenet_resnet_starts_the_backbone_exactly(tmp_path):
    from mmdet.registry import MODELS

    from dynconv_mmdet.checkpoint import load_pretrained
    dense = MODELS.build(
        dict(type='DynamicResNet', depth=18, preset='static', _scope_='mmdet'))
    path = str(tmp_path / 'dense.pth')
    torch.save(dict(state_dict=dense.state_dict()), path)
    model = MODELS.build(
        dict(
            type='DynamicResNet',
            depth=18,
            preset='fdconv',
            dynamic=dict(stages=(False, False, True, False)),
            _scope_='mmdet'))
    report = load_pretrained(model, path, 'resnet')
    assert 'layer3.0.conv2.weight' in report.expanded and not report.missing
    conv = model.layer3[1].conv2
    neutral = torch.full((1, 64), 1 / 64)
    torch.testing.assert_close(
        conv.spectral_kernels(neutral)[0],
        dense.layer3[1].conv2.weight,
        rtol=1e-4,
        atol=1e-6)


def _frozen_backbone(stages=(True, True, False, False), **kwargs):
    from mmdet.registry import MODELS
    return MODELS.build(
        dict(
            type='DynamicResNet',
            depth=18,
            preset='static',
            frozen_stages=1,
            dynamic=dict(
                conv_cfg=dict(type='FDConv2d', kernel_num=4, **kwargs),
                stages=stages),
            _scope_='mmdet'))


def test_frozen_stages_keep_attention_and_fbm_trainable():
    model = _frozen_backbone()
    model.train()
    conv = model.layer1[0].conv2
    assert isinstance(conv, FDConv2d) and not conv.training
    assert not conv.dft_weight.requires_grad
    trainable = {n for n, p in conv.named_parameters() if p.requires_grad}
    assert trainable == {
        n
        for n, _ in conv.named_parameters()
        if n.startswith(('KSM_Global', 'KSM_Local', 'FBM'))
    }
    assert 'KSM_Global.bn.weight' in trainable
    assert not model.layer1[0].bn1.weight.requires_grad
    assert model.layer2[0].conv2.dft_weight.requires_grad
    # the attention BN of the frozen stage uses its running statistics
    before = conv.KSM_Global.bn.running_mean.clone()
    model(torch.randn(2, 3, 32, 32))[0].sum().backward()
    torch.testing.assert_close(conv.KSM_Global.bn.running_mean, before)
    assert conv.KSM_Global.bn.weight.grad is not None
    assert conv.dft_weight.grad is None
    frozen = _frozen_backbone((True, False, False, False),
                              freeze_attention=True).layer1[0].conv2
    assert not any(p.requires_grad for p in frozen.parameters())


def test_is_a_dynamic_conv_family():
    layer = build_conv_layer(
        dict(type='FDConv2d', kernel_num=16), 32, 32, 3, padding=1)
    assert isinstance(layer, DynamicConv2d)
    counts = layer.flops((2, 32, 10, 10))
    assert counts['conv'] == 2 * 32 * 32 * 9 * 100
    assert counts['attention'] > 2 * layer.attention_flops() > 0
    assert counts['aggregation'] > 0
    assert set(layer.produced_attentions()) == {
        'kernel', 'spatial', 'in_channel', 'out_channel'
    }
