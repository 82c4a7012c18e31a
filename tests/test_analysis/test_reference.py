"""dynconv_mmdet.analysis.reference: the released formulation, swapped in
for a pass and restored."""
import pytest
import torch
import torch.nn as nn

from dynconv_mmdet.analysis import reference
from dynconv_mmdet.models.layers import ODConv2d


def test_released_formulation_swaps_forward_and_restores_it(monkeypatch):
    calls = []
    original = reference.batch_folded_conv2d

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(reference, 'batch_folded_conv2d', spy)
    layer = ODConv2d(8, 16, 3, padding=1, kernel_num=4).eval()
    model = nn.Sequential(nn.Conv2d(8, 8, 1), layer)
    x = torch.randn(2, 8, 7, 7)
    with torch.no_grad():
        ours = model(x)
        assert not calls
        with reference.released_formulation(model):
            assert 'forward' in vars(layer)
            released = model(x)
        assert len(calls) == 1
        assert 'forward' not in vars(layer)
        assert torch.equal(model(x), ours) and len(calls) == 1
    assert (released - ours).abs().max() <= 1e-5 * ours.abs().max()
    # restored when the body raises, and around an instance forward
    marker = layer.forward
    layer.forward = marker
    with pytest.raises(RuntimeError, match='body'):
        with reference.released_formulation(model):
            assert layer.forward is not marker
            raise RuntimeError('body')
    assert vars(layer)['forward'] is marker
