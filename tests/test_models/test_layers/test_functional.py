"""The rewritten dynamic convolution equals the released formulation."""
import pytest
import torch

from dynconv_mmdet.analysis.reference import batch_folded_conv2d
from dynconv_mmdet.models.layers import dynamic_conv2d
from dynconv_mmdet.models.layers.functional import dynamic_conv2d_inference


@pytest.mark.parametrize('batch', [1, 3])
@pytest.mark.parametrize('spatial', [True, False])
@pytest.mark.parametrize('size', [2, 12])
@pytest.mark.parametrize('k', [1, 3])
def test_dynamic_conv2d_equals_batch_folded(batch, spatial, size, k):
    # batch 1: the library conv; batch 3: the batched matmul (k=1) or the
    # batch folded into the groups (k=3).
    groups = 2 if k == 3 else 1
    weight = torch.randn(4, 16, 8 // groups, k, k, requires_grad=True)
    x = torch.randn(batch, 8, size, size, requires_grad=True)
    attn = dict(
        kernel_attn=torch.softmax(torch.randn(batch, 4), 1),
        spatial_attn=torch.rand(batch, k * k) if spatial else None,
        in_attn=torch.rand(batch, 8),
        out_attn=torch.rand(batch, 16))
    geo = dict(padding=(k // 2, k // 2), groups=groups)
    ours = dynamic_conv2d(x, weight, **geo, **attn)
    ref = batch_folded_conv2d(x, weight, **geo, **attn)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(ref)
    gx, gw = torch.autograd.grad((ours * g).sum(), (x, weight))
    rx, rw = torch.autograd.grad((ref * g).sum(), (x, weight))
    torch.testing.assert_close(gx, rx, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gw, rw, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('size', [2, 12])
@pytest.mark.parametrize('geometry', ['1x1', '3x3', 'dw', 'g2'])
@pytest.mark.parametrize('kernels', [1, 3])
@pytest.mark.parametrize('attentions', ['all', 'kernel', 'channels'])
def test_inference_form_equals_dynamic_conv2d(size, geometry, kernels,
                                              attentions):
    """``dynamic_conv2d_inference`` (one image: 4-D views, factors in
    place) gives ``dynamic_conv2d``'s numbers and leaves its inputs alone."""
    cin, cout, k, groups = dict(
        dw=(8, 8, 3, 8),
        g2=(8, 12, 3, 2),
        **{
            '1x1': (8, 12, 1, 1),
            '3x3': (8, 12, 3, 1)
        })[geometry]
    weight = torch.randn(kernels, cout, cin // groups, k, k)
    x = torch.randn(1, cin, size, size)
    use = dict(
        all=('kernel', 'spatial', 'in', 'out'),
        kernel=('kernel', ),
        channels=('in', 'out'))[attentions]
    attn = dict(
        kernel_attn=torch.rand(1, kernels)
        if 'kernel' in use or kernels > 1 else None,
        spatial_attn=torch.rand(1, k * k) if 'spatial' in use else None,
        in_attn=torch.rand(1, cin) if 'in' in use else None,
        out_attn=torch.rand(1, cout) if 'out' in use else None)
    bias = torch.randn(cout)
    inputs = [x, weight] + [a for a in attn.values() if a is not None]
    before = [t.clone() for t in inputs]
    geo = dict(padding=(k // 2, k // 2), groups=groups)
    with torch.no_grad():
        fast = dynamic_conv2d_inference(x, weight, bias, **geo, **attn)
    ref = dynamic_conv2d(x, weight, bias, **geo, **attn)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)
    for old, new in zip(before, inputs):
        assert torch.equal(old, new)
