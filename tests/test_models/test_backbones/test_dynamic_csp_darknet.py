"""DynamicCSPDarknet (YOLOX): placement, equivalence with mmdet's
CSPDarknet, norms, EMA parameter swaps, loading, ONNX export."""
import copy
from types import SimpleNamespace

import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.backbones import CSPDarknet
from mmdet.models.layers import ExpMomentumEMA
from mmdet.registry import MODELS
from mmengine.hooks import EMAHook

from dynconv_mmdet.checkpoint import load_pretrained
from dynconv_mmdet.models.layers import DynamicConv2d, ODConv2d
from dynconv_mmdet.testing import rel_err

# YOLOX-S's arrangement with one block per stage and narrow widths: a
# 16-channel Focus stem, stages of 32, 64, 128 and 256 channels.
TINY = dict(deepen_factor=0.1, widen_factor=0.25)


def build(preset='static', **kwargs):
    return MODELS.build(
        dict(type='DynamicCSPDarknet', preset=preset, **dict(TINY, **kwargs)))


def dynamic_names(model):
    return {
        n
        for n, m in model.named_modules() if isinstance(m, DynamicConv2d)
    }


@pytest.mark.parametrize('preset', ['odconv1x', 'odconv4x', 'dyconv4x'])
def test_presets_place_every_conv_but_the_focus_stem(preset):
    model = build(preset)
    expected = {
        f'{name}.conv'
        for name, m in model.named_modules()
        if isinstance(m, ConvModule) and not name.startswith('stem')
    }
    # per stage: stride-2 conv, CSP main/short/final, the block's 1x1 and
    # 3x3; the SPP's two 1x1 in stage 4
    assert len(expected) == 4 * 6 + 2
    assert dynamic_names(model) == expected
    assert type(model.stem.conv.conv) is nn.Conv2d
    family = MODELS.get(model.presets[preset]['conv_cfg']['type'])
    assert all(type(model.get_submodule(n)) is family for n in expected)
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 8, 8), (2, 128, 4, 4),
                                              (2, 256, 2, 2)]


def test_depthwise_variant():
    model = build('odconv1x', use_depthwise=True)
    dw = model.stage2[1].blocks[0].conv2.depthwise_conv.conv
    assert isinstance(dw, ODConv2d) and dw.is_depthwise
    assert dw.attention.filter_fc is None


def test_static_is_mmdets_csp_darknet():
    ours = build()
    ours.init_weights()
    theirs = CSPDarknet(**TINY)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())
    ours.eval(), theirs.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ours(x), theirs(x)):
            assert torch.equal(a, b)


def test_norm_cfg_reaches_attention():
    model = build('odconv1x')  # YOLOX: BN, momentum 0.03, eps 1e-3
    bns = [m.attention.bn for m in model.modules() if isinstance(m, ODConv2d)]
    assert len(bns) == 26
    assert all((type(b), b.momentum, b.eps) == (nn.BatchNorm2d, 0.03, 0.001)
               for b in bns)
    sync = build('odconv1x', norm_cfg=dict(type='SyncBN', momentum=0.03))
    assert isinstance(sync.stage4[0].conv.attention.bn, nn.SyncBatchNorm)


def test_backbone_state_dict_loads_strictly(tmp_path):
    source = build()
    source.init_weights()
    path = str(tmp_path / 'csp_darknet.pth')
    torch.save(source.state_dict(), path)
    model = build('dyconv4x')
    report = load_pretrained(model, path, arch='csp_darknet')
    assert len(report.expanded) == 26 and report.fits


def _train_steps(model, steps, hook, runner):
    optim = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for _ in range(steps):
        outs = model(torch.randn(2, 3, 64, 64))
        optim.zero_grad()
        sum(o.square().mean() for o in outs).backward()
        optim.step()
        hook.after_train_iter(runner, runner.iter)
        runner.iter += 1


def test_ema_swaps_cover_the_dynamic_layers():
    """YOLOX / RTMDet's EMAHook (ExpMomentumEMA, buffers averaged too), in
    the order of mmengine's loops (swap, ``eval()``, inference; swap back,
    ``train()``): inference with the swapped-in EMA weights computes exactly
    what the EMA model computes, and swapping back restores the trained
    model, through two rounds (values cached for inference must follow)."""
    model = build('odconv4x')
    model.init_weights()
    hook = EMAHook(ema_type=ExpMomentumEMA, momentum=0.3, update_buffers=True)
    runner = SimpleNamespace(model=model, iter=0, epoch=0)
    hook.before_run(runner)
    x = torch.randn(2, 3, 64, 64)
    for _ in range(2):
        _train_steps(model, 2, hook, runner)
        with torch.no_grad():
            model.eval()
            trained = model(x)
            ema = copy.deepcopy(hook.ema_model.module)
            ema.eval()
            expected = ema(x)
            hook.before_val_epoch(runner)  # as ValLoop.run: swap, eval()
            model.eval()
            swapped = model(x)
            hook.after_val_epoch(runner)
            model.train()
            model.eval()
            restored = model(x)
        for a, b, c, d in zip(swapped, expected, restored, trained):
            assert torch.equal(a, b)
            assert torch.equal(c, d)
            assert rel_err(a, d) > 1e-4  # the EMA weights differ
    attn_bn = model.stage3[0].conv.attention.bn
    ema_bn = hook.ema_model.module.stage3[0].conv.attention.bn
    assert not torch.equal(attn_bn.running_var, ema_bn.running_var)


def test_onnx_dynamic_batch(tmp_path):
    model = build('odconv1x')
    model.eval()
    path = str(tmp_path / 'csp_darknet.onnx')
    torch.onnx.export(
        model, (torch.randn(2, 3, 64, 64), ),
        path,
        dynamo=True,
        optimize=False,
        input_names=['input'],
        dynamic_shapes={'x': {
            0: torch.export.Dim('batch', min=1, max=64)
        }})
    shape = onnx.load(
        path, load_external_data=False).graph.input[0].type.tensor_type.shape
    assert shape.dim[0].dim_param and not shape.dim[0].HasField('dim_value')
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for batch in (1, 3):
        x = torch.randn(batch, 3, 64, 64)
        with torch.no_grad():
            expected = model(x)
        outs = session.run(None, {'input': x.numpy()})
        assert len(outs) == len(expected) == 3
        for out, ref in zip(outs, expected):
            assert out.shape == tuple(ref.shape)
            assert rel_err(torch.from_numpy(out), ref) < 1e-4
