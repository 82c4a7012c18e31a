"""Stochastic depth (drop path) of DynamicResNet.

Off by default and then exactly mmdet's ResNet (no module, no hook, same
state dict and outputs); on, every block computes
``identity + drop_path(branch(x))`` with one rate for all blocks, as the
KernelWarehouse release's ResNets (``models/kw_resnet.py``,
``models/resnet.py``).
"""
import copy

import pytest
import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath
from mmdet.models.backbones import ResNet

from dynconv_mmdet.models import DynamicResNet


def hooked(model: nn.Module) -> list:
    return [n for n, m in model.named_modules() if m._forward_hooks]


def tiny(**kwargs) -> DynamicResNet:
    torch.manual_seed(0)
    kwargs.setdefault('depth', 18)
    return DynamicResNet(base_channels=8, out_indices=(0, 1, 2, 3), **kwargs)


@pytest.mark.parametrize('preset', ['static', 'kw1x'])
@pytest.mark.parametrize('depth', [18, 50])
def test_off_is_the_network_without_drop_path(depth, preset):
    off = tiny(depth=depth, preset=preset)
    zero = tiny(depth=depth, preset=preset, drop_path_rate=0.0)
    assert off.drop_path_rate == 0.0
    for model in (off, zero):
        assert not any(isinstance(m, DropPath) for m in model.modules())
        assert hooked(model) == []
    assert [n for n, _ in off.named_modules()
            ] == [n for n, _ in zero.named_modules()]
    assert list(off.state_dict()) == list(zero.state_dict())
    zero.load_state_dict(off.state_dict())
    x = torch.randn(2, 3, 32, 32)
    for mode in (True, False):
        off.train(mode)
        zero.train(mode)
        for a, b in zip(off(x), zero(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_off_static_equals_mmdet_resnet():
    torch.manual_seed(0)
    ours = DynamicResNet(depth=50, base_channels=8)
    mmdet = ResNet(depth=50, base_channels=8)
    assert [n for n, _ in ours.named_modules()
            ] == [n for n, _ in mmdet.named_modules()]
    mmdet.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 32, 32)
    for a, b in zip(ours(x), mmdet(x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize('depth', [18, 50])
def test_on_keeps_the_state_dict_and_the_eval_outputs(depth):
    off = tiny(depth=depth, preset='kw1x')
    on = tiny(depth=depth, preset='kw1x', drop_path_rate=0.3)
    blocks = [b for name in on.res_layers for b in getattr(on, name)]
    last = 'bn2' if depth == 18 else 'bn3'  # mmdet's norm2 / norm3
    # one parameter-free DropPath per block, hooked to its branch's last norm
    assert all(b.drop_path.drop_prob == 0.3 for b in blocks)
    assert sorted(hooked(on)) == sorted(f'{name}.{i}.{last}'
                                        for name in on.res_layers
                                        for i in range(len(getattr(on, name))))
    assert list(on.state_dict()) == list(off.state_dict())
    on.load_state_dict(off.state_dict())
    off.eval()
    on.eval()
    x = torch.randn(2, 3, 32, 32)
    for a, b in zip(off(x), on(x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # training: random per forward
    on.train()
    torch.manual_seed(1)
    first = on(x)[-1]
    torch.manual_seed(2)
    assert not torch.equal(first, on(x)[-1])


@pytest.mark.parametrize('depth', [18, 50])
def test_train_drops_whole_residual_branches_at_the_rate(depth):
    rate = 0.3
    model = tiny(depth=depth, drop_path_rate=rate)
    block = model.layer1[1]  # no downsample: the identity is the input
    last = block.norm2 if depth == 18 else block.norm3
    model.train()
    x = torch.randn(4000, block.conv1.in_channels, 2, 2)
    captured = []
    handle = last.register_forward_hook(
        lambda module, args, out: captured.append(out.clone()))
    with torch.no_grad():
        block.drop_path.eval()
        block(x)  # the branch, with the batch statistics of x
        handle.remove()
        block.drop_path.train()
        torch.manual_seed(0)
        out = block(x)
    branch = captured[0]
    assert branch.abs().amax(dim=(1, 2, 3)).min() > 0
    dropped = torch.tensor(
        [torch.equal(o, xi.relu()) for o, xi in zip(out, x)])
    kept = torch.relu(x + branch / (1 - rate))
    torch.testing.assert_close(out[~dropped], kept[~dropped])
    assert abs(dropped.float().mean().item() - rate) < 0.03


def test_norm_eval_keeps_and_frozen_stages_stop_drop_path():
    model = tiny(drop_path_rate=0.5, norm_eval=True, frozen_stages=1)
    model.train()
    assert not any(m.training for m in model.layer1.modules())
    assert all(not b.drop_path.training for b in model.layer1)
    assert all(b.drop_path.training for b in model.layer2)
    # norm_eval: the norms evaluate, the drop path still trains
    assert not model.layer2[0].norm2.training


def test_hook_follows_the_copied_model():
    model = tiny(drop_path_rate=0.5)
    clone = copy.deepcopy(model)
    model.eval()
    clone.train()
    hook = next(iter(clone.layer1[0].norm2._forward_hooks.values()))
    assert hook.drop_path is clone.layer1[0].drop_path
    x = torch.randn(2, 3, 32, 32)
    torch.manual_seed(0)
    a = clone(x)[-1]
    torch.manual_seed(1)
    assert not torch.equal(a, clone(x)[-1])  # the copy trains: random


def test_bottleneck_plugins_after_conv3_end_the_branch():
    plugins = [
        dict(
            cfg=dict(type='ContextBlock', ratio=1 / 4),
            stages=(False, True, False, False),
            position='after_conv3')
    ]
    model = tiny(depth=50, plugins=plugins, drop_path_rate=0.2)
    block = model.layer2[0]
    name = block.after_conv3_plugin_names[-1]
    assert getattr(block, name)._forward_hooks
    assert not block.norm3._forward_hooks
    assert model.layer1[0].norm3._forward_hooks


@pytest.mark.parametrize('rate', [-0.1, 1.0, '0.1', True, None])
def test_bad_rate_is_refused(rate):
    with pytest.raises(ValueError, match='drop_path_rate must be a number'):
        DynamicResNet(depth=18, drop_path_rate=rate)
