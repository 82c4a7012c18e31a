"""The eval-mode path without autograd (folded, packed attention weights and
in-place kernel scaling), its cache, and the training path that pools the
input through the tensor the convolution reads."""
import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import EMAHook

from dynconv_mmdet.models.layers import (DynamicConv2d, ODConv2d,
                                         clear_inference_caches,
                                         set_temperature)
from dynconv_mmdet.models.layers.functional import (dynamic_conv2d,
                                                    prepare_conv_input)
from dynconv_mmdet.testing import rel_err
from dynconv_mmdet.testing.families import build_example, family_examples

#: every registered family's examples, variants included
FAMILIES = family_examples(variants=True)
GEOMETRIES = {
    '3x3':
    dict(in_channels=8, out_channels=12, kernel_size=3, padding=1),
    '3x3_s2':
    dict(in_channels=8, out_channels=12, kernel_size=3, padding=1, stride=2),
    'dw':
    dict(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=8),
    'g2':
    dict(in_channels=8, out_channels=12, kernel_size=3, padding=1, groups=2),
    '1x1':
    dict(in_channels=8, out_channels=12, kernel_size=1),
    '1x1_s2':
    dict(in_channels=8, out_channels=12, kernel_size=1, stride=2),
    'bias':
    dict(in_channels=8, out_channels=12, kernel_size=3, padding=1, bias=True),
}
SIZES = {'small_map': (3, 3), 'large_map': (16, 12)}


def build(family: str, **geometry) -> DynamicConv2d:
    layer = build_example(family, **geometry)
    if layer.bias is not None:
        nn.init.normal_(layer.bias)
    return layer


def trained_stats(layer: DynamicConv2d) -> DynamicConv2d:
    """Non-trivial norm statistics (one training step on a batch of 4)."""
    layer.train()
    with torch.no_grad():
        layer(torch.randn(4, layer.in_channels, 6, 6) * 2 + 0.5)
    return layer.eval()


def plain(layer: DynamicConv2d, x: torch.Tensor) -> torch.Tensor:
    """The differentiable path of the same (eval-mode) layer."""
    with torch.enable_grad():
        return layer(x).detach()


@pytest.mark.parametrize('size', sorted(SIZES))
@pytest.mark.parametrize('batch', [1, 3])
@pytest.mark.parametrize('geo', sorted(GEOMETRIES))
@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_inference_path_equals_differentiable_path(family, geo, batch, size):
    layer = trained_stats(build(family, **GEOMETRIES[geo]))
    set_temperature(layer, 2.0)
    x = torch.randn(batch, 8, *SIZES[size])
    with torch.no_grad():
        fast = layer(x)
    assert rel_err(fast, plain(layer, x)) < 1e-5


@pytest.mark.parametrize('geo', sorted(GEOMETRIES))
@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_pooled_training_path_equals_plain_path(family, geo):
    """Training pools through the tensor the conv reads; the numbers and
    gradients are those of pooling ``x`` itself (an instance whose
    ``compute_attention`` is replaced takes the plain path)."""
    torch.manual_seed(0)
    layer = build(family, **GEOMETRIES[geo]).train()
    reference = copy.deepcopy(layer)
    reference.compute_attention = reference.compute_attention
    x = torch.randn(3, 8, 9, 7, requires_grad=True)
    g = torch.randn_like(layer(x))
    results = []
    for module in (layer, reference):
        params = [p for p in module.parameters()]
        out = module(x)
        grads = torch.autograd.grad((out * g).sum(), [x] + params)
        results.append((out, grads))
    (out, grads), (ref_out, ref_grads) = results
    assert rel_err(out, ref_out) < 1e-5
    for mine, theirs in zip(grads, ref_grads):
        assert rel_err(mine, theirs) < 1e-5


def test_conv_input_must_match_the_attentions():
    x = torch.randn(2, 8, 5, 5)
    weight = torch.randn(2, 4, 8, 3, 3)
    prepared = prepare_conv_input(x, weight.shape, (1, 1), (1, 1), (1, 1), 1,
                                  (True, False, False, False))
    with pytest.raises(ValueError, match='prepared for the attentions'):
        dynamic_conv2d(
            x,
            weight,
            padding=(1, 1),
            kernel_attn=torch.rand(2, 2),
            spatial_attn=torch.rand(2, 9),
            conv_input=prepared)


# --------------------------------------------------------------------------
# The cache of derived weights (ODConv: BatchNorm folded into the trunk,
# heads packed, temperature divided in) follows every change
def od_layer(**kwargs) -> ODConv2d:
    torch.manual_seed(0)
    return trained_stats(ODConv2d(8, 12, 3, padding=1, kernel_num=2, **kwargs))


def fast(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return layer(x)


def check_fresh(layer: nn.Module, x: torch.Tensor) -> None:
    assert rel_err(fast(layer, x), plain(layer, x)) < 1e-5


def test_cache_is_built_once_and_reused():
    layer = od_layer()
    x = torch.randn(1, 8, 6, 6)
    fast(layer, x)
    cache = layer.__dict__['_inference_cache']
    fast(layer, x)
    assert layer.__dict__['_inference_cache'] is cache


def test_cache_follows_an_optimizer_step():
    layer = od_layer()
    x = torch.randn(1, 8, 6, 6)
    before = fast(layer, x)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    with torch.enable_grad():  # a step taken in eval mode
        layer(torch.randn(2, 8, 6, 6)).square().sum().backward()
    optimizer.step()
    after = fast(layer, x)
    assert rel_err(after, before) > 1e-3
    check_fresh(layer, x)


def test_cache_follows_in_place_edits_and_norm_statistics():
    layer = od_layer()
    x = torch.randn(1, 8, 6, 6)
    fast(layer, x)
    with torch.no_grad():
        layer.attention.channel_fc.bias.add_(1.0)
    check_fresh(layer, x)
    layer.attention.bn.running_var.mul_(3.0)
    check_fresh(layer, x)


@pytest.mark.parametrize('assign', [False, True])
def test_cache_follows_load_state_dict(assign):
    layer = od_layer()
    other = od_layer()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(1, 8, 6, 6)
    fast(layer, x)
    layer.load_state_dict(other.state_dict(), assign=assign)
    torch.testing.assert_close(fast(layer, x), fast(other, x))
    # loading into the attention alone
    fast(layer, x)
    layer.attention.load_state_dict(
        od_layer().attention.state_dict(), assign=assign)
    check_fresh(layer, x)


def test_cache_follows_dtype_and_device_moves():
    layer = od_layer()
    x = torch.randn(1, 8, 6, 6)
    fast(layer, x)
    layer.double()
    out = fast(layer, x.double())
    assert out.dtype == torch.float64
    check_fresh(layer, x.double())
    layer.float()
    assert fast(layer, x).dtype == torch.float32
    check_fresh(layer, x)
    layer.to('cpu')
    check_fresh(layer, x)


def test_cache_follows_train_eval_and_temperature():
    layer = od_layer()
    x = torch.randn(1, 8, 6, 6)
    fast(layer, x)
    layer.train()
    with torch.no_grad():  # a training step moves the BN statistics
        layer(torch.randn(4, 8, 6, 6) + 1.0)
    layer.eval()
    check_fresh(layer, x)
    layer.temperature = 5.0
    check_fresh(layer, x)


def test_cache_follows_a_replaced_norm():
    layer = od_layer()
    x = torch.randn(1, 8, 6, 6)
    fast(layer, x)
    bn = nn.BatchNorm2d(layer.attention.hidden_channels)
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    layer.attention.add_module('bn', bn.eval())
    check_fresh(layer, x)


def test_cache_is_not_copied_or_pickled(tmp_path):
    layer = od_layer()
    fast(layer, torch.randn(1, 8, 6, 6))
    assert '_inference_cache' in layer.__dict__
    assert '_inference_cache' not in copy.deepcopy(layer).__dict__
    torch.save(layer, tmp_path / 'layer.pth')
    loaded = torch.load(tmp_path / 'layer.pth', weights_only=False)
    assert '_inference_cache' not in loaded.__dict__
    assert '_inference_cache' not in layer.state_dict()


def test_cache_follows_mmengine_ema_swaps():
    """EMAHook swaps parameters through ``.data`` (no version bump); the
    validation loop calls ``model.eval()`` right after, which drops the
    cache."""
    torch.manual_seed(0)
    model = nn.Sequential(
        ODConv2d(8, 8, 3, padding=1, kernel_num=2),
        nn.ReLU(),
        ODConv2d(8, 8, 1, kernel_num=1),
    )
    trained_stats(model[0])
    runner = SimpleNamespace(model=model, iter=0, max_iters=10, epoch=0)
    hook = EMAHook(momentum=0.5)
    hook.before_run(runner)
    ema = hook.ema_model.module
    with torch.no_grad():
        for p in ema.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    expected_ema = copy.deepcopy(ema).eval()
    x = torch.randn(1, 8, 6, 6)
    model.eval()
    source = fast(model, x)  # the cache holds the source weights
    hook.before_val_epoch(runner)
    model.eval()  # as ValLoop.run does after before_val_epoch
    torch.testing.assert_close(fast(model, x), plain(expected_ema, x))
    hook.after_val_epoch(runner)
    model.train()
    model.eval()
    torch.testing.assert_close(fast(model, x), source)
    # a swap without eval() afterwards: clear the caches explicitly
    hook.before_test_epoch(runner)
    assert clear_inference_caches(model) == 2
    torch.testing.assert_close(fast(model, x), plain(expected_ema, x))


def test_inference_mode():
    """Under ``torch.inference_mode`` the path runs; a layer built there has
    parameters without version counters and caches nothing."""
    layer = od_layer()
    x = torch.randn(1, 8, 6, 6)
    expected = plain(layer, x)
    with torch.inference_mode():
        assert rel_err(layer(x), expected) < 1e-5
    # values cached under inference_mode serve later no_grad calls
    assert rel_err(fast(layer, x), expected) < 1e-5
    with torch.inference_mode():
        built_there = od_layer()
        out = built_there(x)
    assert '_inference_cache' not in built_there.__dict__
    torch.testing.assert_close(fast(built_there, x), out)
