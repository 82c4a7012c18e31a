"""Whole-model checkpoints load exactly, or not at all."""
import os.path as osp

import pytest
import torch
import torch.nn as nn

from dynconv_mmdet.checkpoint import (CheckpointError, CheckpointMismatchError,
                                      compare_state_dict,
                                      load_model_checkpoint,
                                      load_state_dict_checked,
                                      model_state_dict)
from dynconv_mmdet.testing.malicious import (UNSAFE_ENV,
                                             save_malicious_checkpoint)


class Net(nn.Module):

    def __init__(self, width: int = 4, classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.bn = nn.BatchNorm2d(width)
        self.head = nn.Linear(width, classes)


def _randomised(net: nn.Module) -> nn.Module:
    for p in net.parameters():
        nn.init.normal_(p)
    return net


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return set(sa) == set(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_fitting_checkpoint_loads_exactly():
    source, target = _randomised(Net()), Net()
    state = source.state_dict()
    del state['bn.num_batches_tracked']  # an old checkpoint's counter
    report = load_state_dict_checked(target, state)
    assert report.fits and report.kept_init == ['bn.num_batches_tracked']
    assert _same(source, target)


def test_a_checkpoint_that_does_not_fit_is_refused_untouched():
    source = _randomised(Net(width=8, classes=5))
    state = source.state_dict()
    state['extra.weight'] = torch.zeros(1)
    del state['head.bias']
    target = Net()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as err:
        load_state_dict_checked(target, state, source='other.pth')
    message = str(err.value)
    assert message.startswith('checkpoint other.pth does not fit the model:')
    assert 'missing in the checkpoint (1):\n    head.bias' in message
    assert 'unexpected in the checkpoint (1):\n    extra.weight' in message
    assert ('shape mismatch (key: checkpoint vs model) (7):\n    '
            'conv.weight: (8, 3, 3, 3) vs (4, 3, 3, 3)') in message
    assert '(and 2 more)' in message and '--partial-load' in message
    assert all(
        torch.equal(v, before[k]) for k, v in target.state_dict().items())

    # the explicit opt-out loads what fits and leaves the rest alone
    report = load_state_dict_checked(target, state, strict=False)
    assert report.loaded == ['bn.num_batches_tracked']
    assert torch.equal(target.head.bias, before['head.bias'])


def test_model_state_dict_and_prefixes():
    state = {'module.a': torch.zeros(1)}
    assert list(model_state_dict({'state_dict': state}, 'x')) == ['a']
    assert list(model_state_dict(state, 'x',
                                 [(r'^module\.', 'net.')])) == ['net.a']
    with pytest.raises(CheckpointError, match='x holds no state_dict'):
        model_state_dict({'state_dict': {}}, 'x')


def test_metadata_is_kept():
    state = Net().state_dict()
    fit, _ = compare_state_dict(Net(), state)
    assert fit._metadata is state._metadata


def test_file_loading_is_safe_whatever_the_environment(tmp_path, monkeypatch):
    source = _randomised(Net())
    path = str(tmp_path / 'net.pth')
    torch.save({'state_dict': source.state_dict(), 'meta': {}}, path)
    target = Net()
    checkpoint, report = load_model_checkpoint(target, path)
    assert report.fits and _same(source, target) and 'meta' in checkpoint

    marker = str(tmp_path / 'pwned')
    evil = save_malicious_checkpoint(
        str(tmp_path / 'evil.pth'), marker, state_dict=source.state_dict())
    monkeypatch.setenv(UNSAFE_ENV, '1')
    with pytest.raises(CheckpointError, match='refusing to load'):
        load_model_checkpoint(Net(), evil)
    assert not osp.exists(marker)
