"""Shared by the tests of dynconv_mmdet.analysis.benchmark."""
import pytest

from dynconv_mmdet.analysis import reference


@pytest.fixture
def perturbed():
    """``perturbed(scale_out=1.0, weight_noise=0.0)``: a released
    formulation that is off by a factor on its output or by noise on its
    kernel, to monkeypatch over ``reference.batch_folded_conv2d``."""
    original = reference.batch_folded_conv2d

    def make(scale_out=1.0, weight_noise=0.0):

        def wrong(x, weight, *args, **kwargs):
            weight = weight + weight_noise * weight.detach().abs().max()
            return original(x, weight, *args, **kwargs) * scale_out

        return wrong

    return make
