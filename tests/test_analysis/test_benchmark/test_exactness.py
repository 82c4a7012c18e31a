"""dynconv_mmdet.analysis.benchmark.exactness: the check that guards every
timing of the benchmark."""
import pytest
import torch
import torch.nn as nn

from dynconv_mmdet.analysis import benchmark as bench
from dynconv_mmdet.analysis import reference
from dynconv_mmdet.models.layers import DynamicConv2d, ODConv2d


def test_checker_relative_to_largest_magnitude():
    ref = torch.randn(4, 5)
    assert bench.check_tensors('t', [ref.clone()], [ref], 1e-5) == 0
    # the tolerance scales with each tensor's largest magnitude
    for scale in (1e-6, 1.0, 1e6):
        r = ref * scale
        near = r.clone()
        near[0, 0] += 0.5e-5 * r.abs().max()
        assert bench.check_tensors('t', [near], [r], 1e-5) < 1e-5
        far = r.clone()
        far[1, 2] += 2e-5 * r.abs().max()
        with pytest.raises(bench.ExactnessError, match=r't \[w\]'):
            bench.check_tensors('t', [far], [r], 1e-5, labels=['w'])


def test_checker_rejects_structural_mismatch():
    a = torch.ones(3)
    with pytest.raises(bench.ExactnessError, match='None'):
        bench.check_tensors('t', [None], [a], 1e-5)
    with pytest.raises(bench.ExactnessError, match='shape'):
        bench.check_tensors('t', [torch.ones(4)], [a], 1e-5)
    with pytest.raises(bench.ExactnessError, match='tensors'):
        bench.check_tensors('t', [a, a], [a], 1e-5)
    with pytest.raises(bench.ExactnessError):
        bench.check_tensors('t', [torch.full((3, ), float('nan'))], [a], 1)
    # a numerically zero reference is compared to the floor
    noise = torch.full((3, ), 1e-20)
    assert bench.check_tensors('t', [noise], [-noise], 1e-4, floor=1.0) < 1e-4


@pytest.mark.parametrize('perturb', [
    dict(scale_out=1 + 1e-4),
    dict(weight_noise=1e-3),
])
def test_check_module_catches_disagreement(monkeypatch, perturbed, perturb):
    layer = ODConv2d(8, 16, 3, padding=1, kernel_num=4)
    x = torch.randn(2, 8, 7, 7)
    ok = bench.check_module('odconv', layer, x)
    assert ok['output_rel_err'] < 1e-5 and ok['grad_rel_err'] < 1e-4
    monkeypatch.setattr(reference, 'batch_folded_conv2d', perturbed(**perturb))
    with pytest.raises(bench.ExactnessError, match='odconv'):
        bench.check_module('odconv', layer, x)


def test_check_inference_catches_disagreement(monkeypatch, perturbed):
    layer = ODConv2d(8, 16, 3, padding=1, kernel_num=4)
    x = torch.randn(1, 8, 7, 7)
    ok = bench.check_inference('odconv', layer, x)
    assert ok['mode'] == 'infer' and ok['output_rel_err'] < 1e-5
    assert not layer.training
    monkeypatch.setattr(reference, 'batch_folded_conv2d',
                        perturbed(scale_out=1 + 1e-4))
    with pytest.raises(bench.ExactnessError, match='odconv inference'):
        bench.check_inference('odconv', layer, x)


class _GatedConv2d(DynamicConv2d):
    """A family with its own forward: a kernel gated per output channel."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = nn.Linear(self.in_channels, self.out_channels)
        self.init_weights()

    def forward(self, x):
        gate = torch.sigmoid(self.gate(x.mean((2, 3))))[..., None, None]
        return torch.conv2d(x, self.weight[0], None, self.stride,
                            self.padding) * gate


def test_exactness_check_uses_a_registered_reference():
    layer = _GatedConv2d(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 5, 5)
    assert not reference.has_reference(layer)
    with pytest.raises(ValueError, match='register_reference'):
        with reference.released_formulation(layer):
            pass

    def correct(self, x):
        gate = torch.sigmoid(self.gate(x.mean((2, 3))))
        return reference.batch_folded_conv2d(
            x, self.weight, None, self.stride, self.padding, out_attn=gate)

    reference.register_reference(_GatedConv2d)(correct)
    assert reference.has_reference(nn.Sequential(layer))
    assert bench.check_module('gated', layer, x)['grad_rel_err'] < 1e-4

    def broken(self, x):
        return correct(self, x) * (1 + 1e-3)

    reference.register_reference(_GatedConv2d)(broken)
    with pytest.raises(bench.ExactnessError, match='gated output'):
        bench.check_module('gated', layer, x)
    with pytest.raises(bench.ExactnessError, match='gated inference'):
        bench.check_inference('gated', layer, x[:1])
