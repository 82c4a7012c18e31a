"""DynamicCSPNeXt (RTMDet): placement, equivalence with mmdet's CSPNeXt,
norms, freezing, init, dense-to-dynamic loading of a CSPNeXt checkpoint,
ONNX export."""
import math

import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.backbones import CSPNeXt
from mmdet.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from dynconv_mmdet.checkpoint import CheckpointMismatchError, LoadReport
from dynconv_mmdet.models import DynamicCSPNeXt
from dynconv_mmdet.models.layers import DynamicConv2d, ODConv2d
from dynconv_mmdet.testing import rel_err

# RTMDet-tiny's depth (one block per stage), narrower: 8/16-channel stem,
# stages of 32, 64, 128 and 256 channels.
TINY = dict(deepen_factor=0.167, widen_factor=0.25)


def build(preset='static', **kwargs):
    return MODELS.build(
        dict(type='DynamicCSPNeXt', preset=preset, **dict(TINY, **kwargs)))


def conv_module_convs(model, skip=('stem.', )):
    """Names of every ConvModule's conv outside ``skip``, from the static
    structure (independent of the placement code)."""
    return {
        f'{name}.conv'
        for name, m in model.named_modules()
        if isinstance(m, ConvModule) and not f'{name}.'.startswith(skip)
    }


def dynamic_names(model):
    return {
        n
        for n, m in model.named_modules() if isinstance(m, DynamicConv2d)
    }


def test_presets_place_every_conv_but_the_stem():
    static = build()
    expected = conv_module_convs(static)
    # per stage: stride-2 conv, CSP main/short/final, block 3x3 and the
    # depthwise + pointwise convs of its 5x5; the SPP's two 1x1 in stage 4
    assert len(expected) == 4 * 7 + 2
    assert {
        'stage1.1.blocks.0.conv1.conv',
        'stage1.1.blocks.0.conv2.depthwise_conv.conv', 'stage4.1.conv1.conv'
    } <= expected
    for preset, kernels in (('odconv1x', 1), ('odconv4x', 4), ('dyconv4x', 4)):
        model = build(preset)
        assert dynamic_names(model) == expected, preset
        family = MODELS.get(DynamicCSPNeXt.presets[preset]['conv_cfg']['type'])
        assert all(
            type(model.get_submodule(n)) is family
            and model.get_submodule(n).num_kernels == kernels
            for n in expected)
        # the CSP layer's channel attention stays a static 1x1 conv
        assert type(model.stage2[1].attention.fc) is nn.Conv2d
    dw = build('odconv1x').stage1[1].blocks[0].conv2.depthwise_conv.conv
    assert dw.is_depthwise and dw.kernel_size == (5, 5)
    assert dw.attention.filter_fc is None  # no filter attention
    assert not dynamic_names(static)


def test_stem_and_custom_layout():
    model = build(
        'static',
        dynamic=dict(
            conv_cfg=dict(type='ODConv2d', kernel_num=2),
            stages=(False, False, True, False),
            stem=True))
    names = dynamic_names(model)
    assert names == {
        f'stem.{i}.conv'
        for i in range(3)
    } | {n
         for n in conv_module_convs(model) if n.startswith('stage3.')}
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 8, 8), (2, 128, 4, 4),
                                              (2, 256, 2, 2)]


def test_parts_of_a_stage():
    model = build('odconv1x', dynamic=dict(parts=('blocks', )))
    assert dynamic_names(model) == {
        n
        for n in conv_module_convs(model) if '.blocks.' in n
    }
    assert len(dynamic_names(model)) == 4 * 3
    model = build('dyconv4x', dynamic=dict(parts=('downsample', 'spp')))
    assert dynamic_names(model) == {
        f'stage{i}.0.conv'
        for i in range(1, 5)
    } | {'stage4.1.conv1.conv', 'stage4.1.conv2.conv'}
    with pytest.raises(ValueError, match='`parts` takes a non-empty subset'):
        build('odconv1x', dynamic=dict(parts=('transition', )))


def test_bad_arguments():
    with pytest.raises(ValueError, match='unknown preset'):
        build('odconv8x')
    with pytest.raises(ValueError, match='`stages` needs 4 booleans'):
        build('odconv1x', dynamic=dict(stages=(True, ) * 5))
    with pytest.raises(TypeError, match='keyword-only'):
        DynamicCSPNeXt('P5', 'odconv1x')
    # positional arguments are mmdet's, in its order
    model = DynamicCSPNeXt('P5', 0.167, 0.25, (1, 2), preset='odconv1x')
    assert model.out_indices == (1, 2) and dynamic_names(model)


def test_p6_presets_cover_five_stages():
    model = build('odconv1x', arch='P6', widen_factor=0.125)
    assert model.layout['stages'] == (True, ) * 5
    assert dynamic_names(model) == conv_module_convs(model)
    assert any(n.startswith('stage5.') for n in dynamic_names(model))


def test_static_is_mmdets_cspnext():
    ours = build()
    ours.init_weights()
    theirs = CSPNeXt(**TINY)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())
    ours.eval(), theirs.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ours(x), theirs(x)):
            assert torch.equal(a, b)


def test_norm_cfg_reaches_attention():
    # mmdet's default: BN with momentum 0.03, eps 1e-3 (kept by the attention)
    bn = build('odconv1x').stage1[0].conv.attention.bn
    assert type(bn) is nn.BatchNorm2d
    assert (bn.momentum, bn.eps) == (0.03, 0.001)
    # RTMDet's SyncBN
    sync = build('odconv4x', norm_cfg=dict(type='SyncBN'))
    bns = [m.attention.bn for m in sync.modules() if isinstance(m, ODConv2d)]
    assert len(bns) == 30
    assert all(isinstance(b, nn.SyncBatchNorm) for b in bns)
    # the layout's own norm wins
    gn = build(
        'odconv1x',
        dynamic=dict(
            conv_cfg=dict(
                type='ODConv2d', norm_cfg=dict(type='GN', num_groups=4))))
    assert isinstance(gn.stage1[0].conv.attention.bn, nn.GroupNorm)


def test_single_image_training_and_frozen_stages():
    model = build('odconv4x', frozen_stages=1)
    model.train()
    attn_bn = model.stage3[0].conv.attention.bn
    stats = attn_bn.running_mean.clone()
    outs = model(torch.randn(1, 3, 64, 64))
    sum(o.sum() for o in outs).backward()
    # one image: the attention BN normalises with its running statistics
    assert torch.equal(attn_bn.running_mean, stats)
    for name, p in model.named_parameters():
        frozen = name.startswith(('stem.', 'stage1.'))
        assert p.requires_grad != frozen, name
        assert (p.grad is not None) != frozen, name
    assert not model.stage1[0].conv.attention.bn.training
    assert attn_bn.training
    model = build('odconv1x', norm_eval=True)
    model.train()
    assert all(not m.training for m in model.modules()
               if isinstance(m, _BatchNorm))


def test_init_keeps_the_families_attention_init():
    """mmdet's Kaiming-uniform (fan_in, a=sqrt(5)) of every nn.Conv2d also
    reaches the attention's 1x1 convs; each family re-initialises its own."""
    model = build('odconv1x')
    model.init_weights()
    stem = model.stem[0].conv.weight
    assert stem.abs().max() <= 1 / math.sqrt(stem[0].numel())
    for m in model.modules():
        if isinstance(m, ODConv2d):
            spatial = m.attention.spatial_fc
            if spatial is None:
                continue
            # Kaiming-normal fan_out (released): std sqrt(2 / kh kw) > 0.47,
            # far outside the uniform bound 1 / sqrt(fan_in) <= 0.25
            bound = 1 / math.sqrt(spatial.in_channels)
            assert spatial.weight.abs().max() > 1.5 * bound


def _save_checkpoint(path, static):
    """An mmpretrain-style CSPNeXt classifier checkpoint."""
    state = {f'backbone.{k}': v for k, v in static.state_dict().items()}
    state['head.fc.weight'] = torch.randn(10, 256)
    state['head.fc.bias'] = torch.zeros(10)
    torch.save(dict(state_dict=state, meta=dict(epoch=600)), path)


def _trained_static():
    """A static CSPNeXt whose BN statistics are not the defaults."""
    static = build()
    static.init_weights()
    static.train()
    with torch.no_grad():
        static(torch.randn(4, 3, 64, 64))
    static.eval()  # mmdet's train() returns None: no chaining
    return static


@pytest.mark.parametrize('preset', ['odconv1x', 'odconv4x', 'dyconv4x'])
def test_dense_cspnext_checkpoint_starts_dynamic_backbone(preset, tmp_path):
    static = _trained_static()
    path = str(tmp_path / 'cspnext_imagenet.pth')
    _save_checkpoint(path, static)
    # as mmdet's RTMDet configs give it
    model = build(
        preset,
        init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint=path))
    model.init_weights()
    dense = static.state_dict()
    for name in dynamic_names(model):
        kernels = model.get_submodule(name).weight
        assert torch.equal(
            kernels,
            dense[f'{name}.weight'].unsqueeze(0).expand_as(kernels)), name
    for key, value in model.state_dict().items():
        if value.shape == dense.get(key, value[None]).shape:
            assert torch.equal(value, dense[key]), key
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        outs, refs = model(x), static(x)
    for out, ref in zip(outs, refs):
        if preset == 'dyconv4x':  # softmax weights sum to 1: the dense net
            assert rel_err(out, ref) < 1e-4
        else:  # the sigmoid attentions modulate the dense convs
            assert rel_err(out, ref) > 1e-2


def test_checkpoint_loading_is_strict(tmp_path):
    from dynconv_mmdet.checkpoint import load_pretrained
    static = _trained_static()
    path = str(tmp_path / 'cspnext.pth')
    _save_checkpoint(path, static)
    # the whole classifier, no prefix: the head is dropped by the layout
    model = build('odconv1x')
    report = load_pretrained(model, path, arch='cspnext')
    assert isinstance(report, LoadReport)
    assert len(report.expanded) == 30 and not report.missing
    assert not report.unexpected and not report.mismatched
    # another width does not fit
    with pytest.raises(CheckpointMismatchError, match='shape mismatch'):
        build(
            'odconv1x',
            widen_factor=0.375,
            init_cfg=dict(
                type='Pretrained', prefix='backbone.',
                checkpoint=path)).init_weights()
    # a key outside the backbone (e.g. a detector's neck under the prefix)
    state = torch.load(path, weights_only=True)['state_dict']
    state['backbone.neck_conv.weight'] = torch.zeros(1)
    torch.save(dict(state_dict=state), path)
    with pytest.raises(CheckpointMismatchError, match='neck_conv'):
        build(
            'odconv1x',
            init_cfg=dict(
                type='Pretrained', prefix='backbone.',
                checkpoint=path)).init_weights()


def test_onnx_dynamic_batch(tmp_path):
    model = build('odconv4x')
    model.eval()
    path = str(tmp_path / 'cspnext.onnx')
    torch.onnx.export(
        model, (torch.randn(2, 3, 64, 64), ),
        path,
        dynamo=True,
        optimize=False,
        input_names=['input'],
        dynamic_shapes={'x': {
            0: torch.export.Dim('batch', min=1, max=64)
        }})
    batch_dim = onnx.load(
        path, load_external_data=False).graph.input[0].type.tensor_type.shape
    assert batch_dim.dim[0].dim_param
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
