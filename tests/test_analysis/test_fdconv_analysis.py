"""FDConv in the analysis tools: its FLOP model counted by hand (the
Fourier transforms included, which torch's FlopCounterMode does not count)
and its released formulation, the benchmark's reference."""
import math

import pytest
import torch
from mmcv.cnn import build_conv_layer
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from dynconv_mmdet.analysis import dynamic_conv2d_flops, reference
from dynconv_mmdet.analysis.benchmark import check_inference, check_module
from dynconv_mmdet.models.layers.fdconv.cost import BREAKDOWN, fft_flops


def fdconv(cin, cout, k, **kwargs):
    return build_conv_layer(
        dict(type='FDConv2d', **kwargs), cin, cout, k, padding=k // 2)


def test_fft_cost_model():
    # 5/4 n log2 n multiply-adds for n real values (5/2 n log2 n real ops)
    assert fft_flops(4, 8) == 1.25 * 32 * 5
    assert fft_flops(10, 10) == round(1.25 * 100 * math.log2(100))
    assert fft_flops(1, 1) == 0


def test_3x3_with_fbm_by_hand():
    layer = fdconv(32, 32, 3, kernel_num=16)
    parts = layer.flops_breakdown((2, 32, 10, 10))
    numel = 32 * 32 * 9
    ksm_global = 32 * 16 + 16 * (32 + 32 + 9 + 16)  # A = 16; 4 heads
    ksm_local = 32 * 9 * 32 * 3  # Conv1d 1 -> C_out k k, width 3, C_in
    assert parts == dict(
        pool=2 * 32 * 100,
        ksm=2 * (ksm_global + ksm_local),
        # kernel (9216) > maps (64 x 100): channel attentions on the maps
        spectrum_scaling=2 * 2 * 96 * 49,
        kernel_transform=2 * fft_flops(96, 96),
        kernel_attention=2 * 2 * numel,  # local and spatial
        map_attention=2 * (32 * 100 + 32 * 100),
        # FBM: 3 bands, 3 band-weight convs 32 -> 1 (3x3), 4 transforms
        fbm_convs=2 * 3 * 32 * 9 * 100,
        fbm_transforms=2 * 32 * 4 * fft_flops(10, 10),
        fbm_masks=2 * 32 * 3 * 10 * 6 * 2,
        fbm_products=2 * 32 * 3 * 100,
        conv=2 * numel * 100)
    flops = dynamic_conv2d_flops(layer, (2, 32, 10, 10))
    for entry, keys in BREAKDOWN.items():
        assert flops[entry] == sum(parts[k] for k in keys)
    assert flops['total'] == sum(parts.values())


def test_1x1_and_one_group_by_hand():
    layer = fdconv(32, 64, 1, kernel_num=4)  # no FBM, no spatial head
    parts = layer.flops_breakdown((1, 32, 8, 8))
    numel = 64 * 32
    # kernel (2048) < maps (96 x 64): every attention in the kernel
    assert parts['kernel_attention'] == 2 * numel  # local, channel x filter
    assert parts['map_attention'] == 0
    assert parts['kernel_transform'] == fft_flops(64, 32)
    assert parts['fbm_transforms'] == parts['fbm_convs'] == 0
    assert parts['conv'] == numel * 64
    # kernel_num=1: no kernel head, one kernel for the whole batch
    single = fdconv(32, 32, 3, kernel_num=1)
    parts = single.flops_breakdown((4, 32, 6, 6))
    assert parts['kernel_transform'] == fft_flops(96, 96)
    assert parts['spectrum_scaling'] == 2 * 96 * 49
    dense = fdconv(16, 16, 3, kernel_num=4)  # min(C) <= 16: a plain conv
    parts = dense.flops_breakdown((1, 16, 6, 6))
    assert sum(parts.values()) == parts['conv'] == 16 * 16 * 9 * 36


class FFTCensus(TorchDispatchMode):
    """The real 2-D transforms that run: FLOPs by :func:`fft_flops` of
    every one (leading dims as many transforms)."""

    def __init__(self):
        super().__init__()
        self.flops = 0
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name in ('_fft_r2c', '_fft_c2r'):
            real = args[0] if name == '_fft_r2c' else out
            dims = sorted(d % real.dim() for d in args[1])
            assert len(dims) == 2
            sizes = [real.shape[d] for d in dims]
            count = real.numel() // math.prod(sizes)
            self.flops += count * fft_flops(*sizes)
            self.calls += 1
        return out


@pytest.mark.parametrize('cin,cout,k,shape', [(32, 32, 3, (2, 10, 10)),
                                              (32, 48, 3, (1, 7, 9)),
                                              (32, 64, 1, (2, 8, 8))])
def test_model_matches_what_runs(cin, cout, k, shape):
    """The convolutions and matrix products against torch's FlopCounterMode
    (2 FLOPs per multiply-add; FFTs and elementwise multiplies it does not
    count), the transforms against a census of the FFT calls."""
    layer = fdconv(cin, cout, k, kernel_num=4).eval()
    x = torch.randn(shape[0], cin, *shape[1:])
    parts = layer.flops_breakdown(x.shape)
    with FlopCounterMode(display=False) as fc, FFTCensus() as census, \
            torch.no_grad():
        layer(x)
    assert fc.get_total_flops() == 2 * (
        parts['conv'] + parts['ksm'] + parts['fbm_convs'])
    assert census.flops == parts['kernel_transform'] + parts['fbm_transforms']
    assert census.calls == 1 + (4 if k == 3 else 0)


RELEASE_CASES = [
    # (cin, cout, k, kwargs, input shape): maps larger and smaller than
    # the kernel, 1x1, stride 2 with bias, odd C_in k with one group,
    # two spectrum copies
    (32, 32, 3, dict(kernel_num=16), (2, 9, 9)),
    (32, 32, 3, dict(kernel_num=16), (2, 3, 3)),
    (32, 64, 1, dict(kernel_num=4), (2, 7, 5)),
    (32, 48, 3, dict(kernel_num=8, stride=2, bias=True), (1, 11, 10)),
    (33, 40, 3, dict(kernel_num=1), (2, 6, 6)),
    (32, 32, 3, dict(kernel_num=4, param_ratio=2), (3, 5, 5)),
]


@pytest.mark.parametrize('cin,cout,k,kwargs,shape', RELEASE_CASES)
def test_released_formulation_equals_ours(cin, cout, k, kwargs, shape):
    torch.manual_seed(0)
    cfg = dict(kwargs)
    geometry = {
        key: cfg.pop(key)
        for key in ('stride', 'bias') if key in kwargs
    }
    layer = build_conv_layer(
        dict(type='FDConv2d', **cfg), cin, cout, k, padding=k // 2, **geometry)
    with torch.no_grad():  # every attention path away from its init
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    x = torch.randn(shape[0], cin, *shape[1:])
    assert reference.reference_forward(layer) is not None
    check_module('fdconv', layer, x, torch.float64)
    check_inference('fdconv', layer, x)


def test_released_kernels_are_stacked_per_sample(monkeypatch):
    layer = fdconv(32, 32, 3, kernel_num=16)
    seen = []
    original = reference.fdconv_release_kernels

    def spy(conv, kernel_att):
        kernels = original(conv, kernel_att)
        seen.append(tuple(kernels.shape))
        return kernels

    monkeypatch.setattr(reference, 'fdconv_release_kernels', spy)
    with reference.released_formulation(layer), torch.no_grad():
        layer(torch.randn(2, 32, 6, 6))
    assert seen == [(2, 1, 32, 32, 3, 3)]
