# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""FDConv to ONNX (issue 19, item 9): below opset 17 (ONNX's first ``DFT``)
its transforms are real DFT products, the kernel's from constant matrices,
the frequency band modulation's built in the graph from the runtime height
and width. ONNX Runtime against PyTorch at opsets 11 and 13, free batch,
height and width (odd sizes, and sizes above the band masks' 64), every
export form, and a small FDConv backbone. The generic per-family checks
(FDConv's example included) are in ``test_export_forms.py``."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn

from dynconv_mmdet.models.layers import FDConv2d
from dynconv_mmdet.models.layers.functional import export_form

#: Relative tolerance of ONNX Runtime against PyTorch.
RTOL = 1e-4
#: ONNX operators that would mean a transform was not rewritten.
NO_OPS = {'DFT', 'STFT'}


def randomise(model, scale=0.3, seed=1):
    """Every attention path away from its near-zero start, non-trivial norm
    statistics, eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.1, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
        for name, p in model.named_parameters():
            if any(part in name for part in ('KSM', 'FBM', 'bias')):
                p.add_(torch.randn(p.shape, generator=g) * scale)
    model.eval()  # mmdet's ResNet.train returns None
    return model


def fdconv(in_channels=8, out_channels=16, kernel_size=3, **kwargs):
    kwargs.setdefault('kernel_num', 4)
    torch.manual_seed(0)
    conv = FDConv2d(
        in_channels,
        out_channels,
        kernel_size,
        padding=kernel_size // 2,
        use_fdconv_if_c_gt=0,
        **kwargs)
    assert not conv.is_dense
    return randomise(nn.Sequential(conv))


#: Free batch, height and width.
AXES = {'input': {0: 'batch', 2: 'height', 3: 'width'}}


def export(model, example, path, form, opset, dynamic):
    axes = AXES if dynamic else None
    with export_form(form), torch.no_grad():
        torch.onnx.export(
            model, (example, ),
            str(path),
            input_names=['input'],
            opset_version=opset,
            dynamic_axes=axes,
            dynamo=False)
    graph = onnx.load(str(path)).graph
    assert not NO_OPS & {n.op_type for n in graph.node}
    return graph, ort.InferenceSession(
        str(path), providers=['CPUExecutionProvider'])


def max_rel_err(session, model, shapes):
    worst = 0.0
    for shape in shapes:
        x = torch.randn(*shape)
        with torch.no_grad():
            ref = model(x)
        refs = ref if isinstance(ref, (tuple, list)) else [ref]
        outs = session.run(None, {'input': x.numpy()})
        assert len(outs) == len(refs)
        for out, r in zip(outs, refs):
            assert out.shape == tuple(r.shape), shape
            err = float(np.abs(out - r.numpy()).max() / r.abs().max())
            assert err < RTOL, (shape, err)
            worst = max(worst, err)
    return worst


def free_axes(graph):
    dims = graph.input[0].type.tensor_type.shape.dim
    return all(
        d.dim_param and not d.HasField('dim_value')
        for d in (dims[0], dims[2], dims[3]))


CASES = {
    # FBM on 3x3, bias, two spectrum copies, odd C_in * kw (5 * 3)
    '3x3': dict(in_channels=5, bias=True, param_ratio=2),
    # stride 2 with FBM (the release converts stride-2 convs)
    '3x3-s2': dict(stride=2),
    # 1x1 widening (no FBM, the 'free' form's batched matrix product)
    '1x1': dict(kernel_size=1, out_channels=24),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_eager_forward_export_equals_forward(case):
    """The export computation run eagerly: the module's numbers."""
    model = fdconv(**CASES[case])
    conv = model[0]
    for shape in ((2, conv.in_channels, 12, 12), (3, conv.in_channels, 70,
                                                  33)):
        x = torch.randn(*shape)
        with torch.no_grad():
            ref = conv(x)
            for form in ('free', 'grouped'):
                out = conv.forward_export(x, form)
                torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('case', sorted(CASES))
@pytest.mark.parametrize('opset', [11, 13])
def test_free_form_any_batch_and_size(case, opset, tmp_path):
    """Exported from one image with free batch, height and width: right
    for batches 1-3 and other sizes, odd ones and above the band masks'
    precomputed 64 (their nearest resize in the graph)."""
    model = fdconv(**CASES[case])
    c = model[0].in_channels
    graph, session = export(model, torch.randn(1, c, 12, 12),
                            tmp_path / 'm.onnx', 'free', opset, True)
    assert free_axes(graph)
    max_rel_err(session, model, [(1, c, 12, 12), (2, c, 12, 12), (3, c, 9, 14),
                                 (2, c, 70, 33)])


def test_fixed_batch_forms(tmp_path):
    """'single': one Conv with the sample's kernel (no unfold); 'grouped':
    the fixed batch of two in the groups of one Conv."""
    model = fdconv()
    graph, session = export(model, torch.randn(1, 8, 12, 12),
                            tmp_path / 'single.onnx', 'single', 11, False)
    assert 'Im2Col' not in {n.op_type for n in graph.node}
    # one Conv with a computed kernel (the band weights' and the local
    # branch's have constant ones)
    constants = {t.name for t in graph.initializer}
    assert len([
        n for n in graph.node
        if n.op_type == 'Conv' and n.input[1] not in constants
    ]) == 1
    max_rel_err(session, model, [(1, 8, 12, 12)])
    graph, session = export(model, torch.randn(2, 8, 12, 12),
                            tmp_path / 'grouped.onnx', 'grouped', 13, False)
    groups = [
        a.i for n in graph.node if n.op_type == 'Conv' for a in n.attribute
        if a.name == 'group'
    ]
    assert 2 in groups
    max_rel_err(session, model, [(2, 8, 12, 12)])


def test_one_kernel_for_the_batch(tmp_path):
    """kernel_num=1 with the kernel attention only and no local branch: one
    kernel for every sample (one Conv), in the 'free' form too."""
    model = fdconv(kernel_num=1, ksm_only_kernel_att=True, use_ksm_local=False)
    graph, session = export(model, torch.randn(1, 8, 12, 12),
                            tmp_path / 'm.onnx', 'free', 11, True)
    assert 'MatMul' in {n.op_type for n in graph.node}  # the DFT products
    max_rel_err(session, model, [(2, 8, 12, 12), (1, 8, 7, 9)])


def test_declares_every_form():
    assert set(FDConv2d.export_forms) == {'single', 'grouped', 'free'}


@pytest.fixture(scope='module')
def backbone():
    """ResNet-18 at an eighth of the width, the block convs of the first
    and last stages FDConvs (``use_fdconv_if_c_gt=4``: the 8-channel convs
    too; the last stage's maps 2 x 2 and 3 x 2), with FBM on every one;
    the others dense, to keep the export short."""
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='DynamicResNet',
            depth=18,
            base_channels=8,
            preset='fdconv',
            dynamic=dict(
                conv_cfg=dict(
                    type='FDConv2d', kernel_num=4, use_fdconv_if_c_gt=4),
                stages=(True, False, False, True)),
            out_indices=(0, 1, 2, 3),
            _scope_='mmdet'))
    convs = [m for m in model.modules() if isinstance(m, FDConv2d)]
    assert len(convs) == 8
    assert all(not c.is_dense and hasattr(c, 'FBM') for c in convs)
    return randomise(model, scale=0.2)


def test_backbone_free_batch_and_size(backbone, tmp_path):
    """The FDConv ResNet exported once (opset 11, from one 64 x 64 image):
    its four feature maps right for two images and odd sizes."""
    graph, session = export(backbone, torch.randn(1, 3, 64, 64),
                            tmp_path / 'backbone.onnx', None, 11, True)
    assert free_axes(graph)
    max_rel_err(session, backbone, [(2, 3, 64, 64), (1, 3, 67, 45)])
