# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""mmcv's DCN and DCNv2 in standard ONNX operators: the numbers of mmcv's
kernels, and ONNX Runtime equal to PyTorch through mmdeploy's rewriter
context (opsets 11 and 13; batch, height and width free)."""
import onnx
import onnxruntime as ort
import pytest
import torch
from mmcv.ops import (DeformConv2dPack, ModulatedDeformConv2dPack,
                      deform_conv2d, modulated_deform_conv2d)

from dynconv_mmdet.deployment import deform_conv
from dynconv_mmdet.deployment.compat import mmdeploy_compat
from dynconv_mmdet.testing import rel_err

#: (C_in, C_out, k, stride, padding, dilation, groups, deform groups)
GEOMETRIES = [
    (8, 12, 3, 1, 1, 1, 1, 1),
    (8, 12, 3, 2, 1, 1, 2, 2),
    (4, 6, 3, 1, 2, 2, 1, 4),
    (6, 6, 1, 1, 0, 1, 1, 1),
]


@pytest.mark.parametrize('geometry', GEOMETRIES, ids=str)
def test_gather_form_equals_mmcv(geometry):
    cin, cout, k, s, p, d, g, dg = geometry
    x = torch.randn(2, cin, 9, 11)
    ho = (9 + 2 * p - d * (k - 1) - 1) // s + 1
    wo = (11 + 2 * p - d * (k - 1) - 1) // s + 1
    # offsets of a few pixels: many samples fall outside the map
    offset = torch.randn(2, 2 * dg * k * k, ho, wo) * 3
    weight = torch.randn(cout, cin // g, k, k)
    bias = torch.randn(cout)
    mask = torch.rand(2, dg * k * k, ho, wo)
    args = ((s, s), (p, p), (d, d), g, dg)
    torch.testing.assert_close(
        deform_conv.deform_conv2d_gather(x, offset, weight, None, *args),
        deform_conv2d(x, offset, weight, *args),
        rtol=1e-5,
        atol=1e-5)
    torch.testing.assert_close(
        deform_conv.deform_conv2d_gather(x, offset, weight, bias, *args, mask),
        modulated_deform_conv2d(x, offset, mask, weight, bias, *args),
        rtol=1e-5,
        atol=1e-5)


def _layer(cls):
    layer = cls(8, 12, 3, stride=2, padding=1, deform_groups=2).eval()
    # offsets that move the samples (mmcv initialises the offset conv to 0)
    torch.nn.init.normal_(layer.conv_offset.weight, std=0.3)
    torch.nn.init.normal_(layer.conv_offset.bias, std=1.0)
    return layer


@pytest.mark.parametrize('opset', [11, 13])
@pytest.mark.parametrize('cls', [DeformConv2dPack, ModulatedDeformConv2dPack])
def test_onnxruntime_equals_pytorch(cls, opset, tmp_path):
    from mmdeploy.core import RewriterContext
    layer = _layer(cls)
    path = str(tmp_path / 'dcn.onnx')
    deform_conv.register_rewriters()
    with mmdeploy_compat(), torch.no_grad(), RewriterContext(
            cfg={}, backend='onnxruntime', opset=opset):
        torch.onnx.export(
            layer, (torch.randn(1, 8, 9, 11), ),
            path,
            opset_version=opset,
            input_names=['input'],
            output_names=['output'],
            dynamic_axes={
                'input': {
                    0: 'batch',
                    2: 'height',
                    3: 'width'
                },
                'output': {
                    0: 'batch',
                    2: 'height',
                    3: 'width'
                }
            })
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert not ops & {'MMCVDeformConv2d', 'MMCVModulatedDeformConv2d'}
    for batch, size in ((1, (9, 11)), (3, (16, 13))):
        x = torch.randn(batch, 8, *size)
        with torch.no_grad():
            expected = layer(x)
        out = torch.from_numpy(session.run(None, {'input': x.numpy()})[0])
        assert out.shape == expected.shape
        assert rel_err(out, expected) < 1e-5
