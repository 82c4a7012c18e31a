"""KWConv2d: the released KernelWarehouse module's numbers and the drop-in
behaviour of a dynamic conv whose cells live in a shared warehouse."""
import copy
import json
import os.path as osp

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer
from mmengine.registry import MODELS

from dynconv_mmdet.models.layers import (KWConv2d, KWLinear,
                                         finalize_dynamic_convs,
                                         get_temperatures, set_temperature)
from dynconv_mmdet.models.layers.kernel_warehouse import fuse_warehouse_name
from dynconv_mmdet.testing import rel_err

DATA_DIR = osp.join(
    osp.dirname(__file__), '..', '..', 'data', 'kernel_warehouse')
CASES = json.load(open(osp.join(DATA_DIR, 'cases.json')))


def finalized(*convs: nn.Module) -> nn.Module:
    """The convs in a container, finalised as one group."""
    holder = nn.Module()
    holder.convs = nn.ModuleList(convs)
    finalize_dynamic_convs(holder)
    return holder


def kw(cin=8, cout=16, k=3, **kwargs) -> KWConv2d:
    kwargs.setdefault('padding', k // 2)
    conv = KWConv2d(cin, cout, k, **kwargs)
    finalize_dynamic_convs(conv)
    return conv


# --------------------------------------------------------------------------
# The released module's numbers
def build_case(spec: dict) -> nn.Module:
    settings = spec['settings']
    convs = []
    for layer in spec['layers']:
        args = dict(
            reduction=settings['reduction'],
            cell_num_ratio=settings['cell_num_ratio'],
            cell_inplane_ratio=settings['cell_inplane_ratio'],
            cell_outplane_ratio=settings['cell_outplane_ratio'],
            nonlocal_basis_ratio=settings['nonlocal_basis_ratio'],
            spatial_partition=settings['spatial_partition'],
            warehouse=layer['warehouse'],
            temperature=spec['temperature'])
        if layer['type'] == 'linear':
            convs.append(
                KWLinear(
                    layer['in_channels'],
                    layer['out_channels'],
                    bias=layer['bias'],
                    **args))
        else:
            convs.append(
                KWConv2d(layer['in_channels'], layer['out_channels'],
                         layer['kernel_size'], layer['stride'],
                         layer['padding'], layer['dilation'], layer['groups'],
                         layer['bias'], **args))
    return finalized(*convs)


@pytest.mark.parametrize('case', sorted(CASES))
def test_kw_matches_released_vectors(case):
    data = np.load(osp.join(DATA_DIR, f'{case}.npz'))
    t = {k: torch.from_numpy(data[k]) for k in data.files}
    net = build_case(CASES[case])
    own = net.state_dict()
    state = {
        k[len('state_dict.'):]: v
        for k, v in t.items() if k.startswith('state_dict.')
    }
    # the release's keys, warehouses by index; its linear layer keeps cells
    # with one spatial axis
    assert set(state) == set(own)
    state = {k: v.reshape(own[k].shape) for k, v in state.items()}
    net.load_state_dict(state, strict=True)
    temperature = t['meta.temperature'].item()
    assert all(v == pytest.approx(temperature)
               for v in get_temperatures(net).values())
    net.train()
    xs, loss = [], 0
    for i, conv in enumerate(net.convs):
        x = t[f'x.{i}'].clone().requires_grad_(True)
        out = conv(x)
        assert rel_err(out, t[f'out_train.{i}']) < 1e-5
        loss = loss + (out * t[f'g.{i}']).sum()
        xs.append(x)
    loss.backward()
    for i, x in enumerate(xs):
        assert rel_err(x.grad, t[f'grad_x.{i}']) < 1e-5
    for name, p in net.named_parameters():
        ref = t[f'grad.{name}'].reshape(p.shape)
        if ref.abs().max() == 0:  # temperature 1: no gradient to attention
            assert p.grad is None or p.grad.abs().max() == 0, name
        else:
            assert rel_err(p.grad, ref) < 1e-5, name
    net.eval()
    with torch.no_grad():
        for i, conv in enumerate(net.convs):
            assert rel_err(conv(t[f'x.{i}']), t[f'out_eval.{i}']) < 1e-5


# --------------------------------------------------------------------------
# Warehouses, cells and the attention
def test_cells_partition_and_attention_follow_the_release():
    a = KWConv2d(16, 32, 3, padding=1, warehouse='w')
    b = KWConv2d(32, 48, 1, warehouse='w')
    c = KWConv2d(24, 24, 3, padding=1, groups=24, warehouse='dw')
    holder = finalized(a, b, c)
    cells = holder.warehouse_manager.weights
    # gcd(32, 48) = 16 output, gcd(16, 32) = 16 input channels, 1x1 cells
    assert tuple(cells[0].shape) == (2 * 9 + 3 * 2, 16, 16, 1, 1)
    assert tuple(cells[1].shape) == (9, 24, 1, 1, 1)  # depthwise
    assert holder.warehouse_manager.names == ['w', 'dw']
    assert (a.num_mixtures, b.num_mixtures, c.num_mixtures) == (18, 6, 9)
    # ratio 1: mixture j of a conv takes cell start + j
    assert a.attention.assignment == tuple(range(18))
    assert b.attention.assignment == tuple(range(18, 24))
    # hidden width max(int(C_in / 16), 16); n + 1 logits per mixture
    assert a.attention.fc1.out_features == 16
    assert a.attention.fc2.out_features == 18 * 25
    assert 'attention.temp_bias' not in a.state_dict()  # not saved
    attn = a.kw_attention(torch.randn(3, 16, 5, 5))
    assert attn.shape == (3, 18, 24)
    # normalised by sum |logits| (the zero cell included) + 1e-3
    assert (attn.abs().sum(-1) < 1).all()


def test_fractional_and_multiple_cell_ratios_assign_as_released():
    half = finalized(
        KWConv2d(
            8,
            8,
            1,
            cell_num_ratio=0.5,
            cell_inplane_ratio=0.5,
            cell_outplane_ratio=0.5,
            warehouse='w'))
    conv = half.convs[0]
    # 4 mixtures, every other one takes a cell, the rest the zero cell (2)
    assert conv.num_kernels == 2 and conv.attention.assignment == (0, 2, 2, 1)
    four = kw(8, 8, 1, cell_num_ratio=4)
    assert four.num_kernels == 4 and four.attention.assignment == (0, )
    with pytest.raises(ValueError, match='one-hot assignment'):
        kw(8, 8, 3, cell_num_ratio=0.75)


def test_temperature_one_is_the_assigned_cells():
    conv = kw(8, 16, 3, temperature=1.0)
    dense = torch.randn(16, 8, 3, 3)
    written = conv.init_from_dense(dense)
    assert written == [conv.cells]
    x = torch.randn(2, 8, 7, 7)
    conv.train()
    torch.testing.assert_close(
        conv(x), F.conv2d(x, dense, padding=1), rtol=1e-5, atol=1e-5)
    # detection keeps temperature 0: refused, saying why
    conv.temperature = 0.0
    with pytest.raises(ValueError, match='temperature is 0 '):
        conv.init_from_dense(dense)
    with pytest.raises(ValueError, match='cell_num_ratio is 0.5'):
        kw(8, 8, 1, cell_num_ratio=0.5,
           temperature=1.0).init_from_dense(torch.randn(8, 8, 1, 1))
    with pytest.raises(ValueError, match='does not fit'):
        kw(8, 8, 1, temperature=1.0).init_from_dense(torch.randn(8, 8, 3, 3))


def test_nonlocal_basis_maps_other_convs_cells():
    args = dict(
        cell_num_ratio=0.5,
        cell_inplane_ratio=0.5,
        cell_outplane_ratio=0.5,
        nonlocal_basis_ratio=1 / 16,
        warehouse='w')
    holder = finalized(
        KWConv2d(16, 16, 1, **args), KWConv2d(16, 32, 3, padding=1, **args))
    first, second = holder.convs
    n = first.num_kernels
    assert n == (4 + 8 * 9) // 2
    attn = second.attention
    assert attn.start_cell == first.attention.num_local_cells == 2
    assert attn.num_basis == 16  # max(int(nonlocal * 1/16), 16)
    assert tuple(attn.fc3.weight.shape) == (n - attn.num_local_cells, 16)
    assert attn.fc2.bias is None
    assert tuple(attn.basis_bias.shape) == (second.num_mixtures * (n + 1), )


def test_flops_count_assembly_attention_and_conv():
    conv = kw(16, 32, 3, stride=2)  # alone: cells of 32 x 16 channels
    flops = conv.flops((2, 16, 8, 8))
    m, n = conv.num_mixtures, conv.num_kernels
    assert m == n == 9
    assert flops['aggregation'] == 2 * m * n * 32 * 16
    assert flops['conv'] == 2 * 32 * 16 * 9 * 4 * 4
    assert flops['pool'] == 2 * 16 * 64
    assert flops['attention'] == 2 * (16 * 16 + 16 * m * (n + 1))
    assert conv.produced_attentions() == ('kernel', )
    assert conv.compute_attention(torch.randn(2, 16, 8,
                                              8)).kernel.shape == (2, m * n)


# --------------------------------------------------------------------------
# Drop-in behaviour
def test_registry_and_conv_module():
    conv = build_conv_layer(dict(type='KWConv2d'), 8, 16, 3, padding=1)
    assert isinstance(conv, KWConv2d) and MODELS.get('KWConv2d') is KWConv2d
    module = ConvModule(
        8,
        16,
        3,
        padding=1,
        conv_cfg=dict(type='KWConv2d', cell_num_ratio=2),
        norm_cfg=dict(type='BN'))
    finalize_dynamic_convs(module)
    assert module(torch.randn(2, 8, 6, 6)).shape == (2, 16, 6, 6)


def test_unfinalised_conv_says_how_to_finalise():
    conv = build_conv_layer(dict(type='KWConv2d'), 8, 16, 3, padding=1)
    with pytest.raises(RuntimeError, match='finalize_dynamic_convs'):
        conv(torch.randn(1, 8, 5, 5))
    with pytest.raises(RuntimeError, match='no kernel warehouse'):
        conv.flops((1, 8, 5, 5))


def test_single_image_trains_with_running_statistics():
    conv = kw(8, 8, 3)
    bn = conv.attention.norm1
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    before = bn.running_mean.clone(), bn.running_var.clone()
    x = torch.randn(1, 8, 6, 6)
    conv.train()
    out = conv(x)
    out.sum().backward()
    assert conv.cells.grad is not None
    torch.testing.assert_close(bn.running_mean, before[0])
    torch.testing.assert_close(bn.running_var, before[1])
    conv.eval()
    torch.testing.assert_close(out, conv(x))
    conv.train()
    conv(torch.randn(2, 8, 6, 6))
    assert not torch.equal(bn.running_mean, before[0])


@pytest.mark.parametrize('k, groups', [(1, 1), (3, 1), (3, 8)])
def test_samples_are_independent(k, groups):
    conv = kw(8, 8, k, groups=groups).eval()
    x = torch.randn(3, 8, 7, 5)
    with torch.no_grad():
        together = conv(x)
        alone = torch.cat([conv(x[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


def test_bf16_and_channels_last():
    conv = kw(8, 16, 1, bias=True).eval()
    nn.init.normal_(conv.bias)
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        ref = conv(x)
        last = conv(x.to(memory_format=torch.channels_last))
        half = copy.deepcopy(conv).to(torch.bfloat16)(x.to(torch.bfloat16))
    torch.testing.assert_close(last, ref, rtol=1e-5, atol=1e-5)
    assert half.dtype == torch.bfloat16
    assert rel_err(half.float(), ref) < 3e-2


def test_deepcopy_keeps_its_own_warehouse():
    holder = finalized(KWConv2d(8, 8, 1, warehouse='w'))
    twin = copy.deepcopy(holder)
    assert twin.convs[0].manager is twin.warehouse_manager
    assert twin.convs[0].cells is not holder.convs[0].cells
    torch.testing.assert_close(twin.convs[0].cells, holder.convs[0].cells)


def test_warehouses_of_a_generic_owner():
    # without a warehouse name each conv has its own, named by its path
    holder = finalized(KWConv2d(8, 8, 1), KWConv2d(8, 8, 1))
    assert holder.warehouse_manager.names == ['convs.0', 'convs.1']
    # finalising again leaves finalised convs alone
    finalize_dynamic_convs(holder)
    assert len(holder.warehouse_manager.weights) == 2
    holder.extra = KWConv2d(8, 8, 1, warehouse='convs.0')
    with pytest.raises(ValueError, match='allocated already'):
        finalize_dynamic_convs(holder)


def test_bad_arguments_are_refused():
    for kwargs, match in [
        (dict(reduction=0), 'reduction'),
        (dict(cell_num_ratio=-1), 'cell_num_ratio'),
        (dict(cell_inplane_ratio=()), 'cell_inplane_ratio'),
        (dict(nonlocal_basis_ratio='x'), 'nonlocal_basis_ratio'),
        (dict(sharing_range=('layer', '')), 'sharing_range'),
        (dict(spatial_partition=1), 'spatial_partition'),
        (dict(warehouse=''), 'warehouse'),
        (dict(min_channels=0), 'min_channels'),
        (dict(temperature=1.5), r'temperature must be in \[0, 1\]'),
        (dict(temperature=-0.1), 'temperature'),
    ]:
        with pytest.raises(ValueError, match=match):
            KWConv2d(8, 8, 3, **kwargs)
    with pytest.raises(ValueError, match='disagree on cell_num_ratio'):
        finalized(
            KWConv2d(8, 8, 1, warehouse='w'),
            KWConv2d(8, 8, 1, warehouse='w', cell_num_ratio=2))
    with pytest.raises(ValueError, match='do not divide'):
        # gcd 4 * 0.75: cells of 3 output channels
        finalized(
            KWConv2d(8, 12, 1, warehouse='w', cell_outplane_ratio=0.75),
            KWConv2d(8, 16, 1, warehouse='w', cell_outplane_ratio=0.75))
    with pytest.raises(ValueError, match='one per warehouse'):
        finalized(
            KWConv2d(8, 8, 1, warehouse='a', cell_num_ratio=(1, 2, 4)),
            KWConv2d(8, 8, 1, warehouse='b', cell_num_ratio=(1, 2, 4)))
    with pytest.raises(ValueError, match=r'\[N, 8, H, W\]'):
        kw(8, 8, 3)(torch.randn(1, 4, 5, 5))


def test_temperature_is_declared_by_the_family():
    assert KWConv2d.temperature_default == 0.0
    assert KWConv2d.temperature_range == (0.0, 1.0)
    assert KWConv2d.temperature_low_inclusive
    assert KWConv2d.temperature_schedule == dict(start=1.0, end=0.0, epochs=20)
    holder = finalized(KWConv2d(8, 8, 1), KWConv2d(8, 8, 1))
    assert set(get_temperatures(holder).values()) == {0.0}
    assert set_temperature(holder, 1.0) == 2
    assert set(get_temperatures(holder).values()) == {1.0}
    with pytest.raises(ValueError, match='one-hot'):
        set_temperature(holder, 2.0)


def test_sharing_range_string_is_iterated_as_released():
    name = 'stage2_layer3_conv1'
    assert fuse_warehouse_name(name, 'layer_conv') == 'stage2_l_c'
    assert fuse_warehouse_name(name, ('layer', 'conv')) == 'stage2_layer_conv'
    assert fuse_warehouse_name(name, ('layer', )) == 'stage2_layer_conv1'
    assert fuse_warehouse_name('stage1_layer0_dwconv0',
                               ['layer', 'pwconv']) == 'stage1_layer_dwconv0'


def test_onnx_export_keeps_the_batch_free(tmp_path):
    conv = kw(8, 16, 3, cell_num_ratio=2).eval()
    path = str(tmp_path / 'kw.onnx')
    torch.onnx.export(
        conv, (torch.randn(2, 8, 9, 9), ),
        path,
        dynamo=True,
        optimize=False,
        dynamic_shapes={'x': {
            0: torch.export.Dim('batch', min=1, max=64)
        }})
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    for batch in (1, 3):
        x = torch.randn(batch, 8, 9, 9)
        with torch.no_grad():
            expected = conv(x)
        out = torch.from_numpy(session.run(None, {name: x.numpy()})[0])
        assert rel_err(out, expected) < 1e-5
