# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Models holding our backbones refuse state dicts that do not fit them,
through any loader, unless a partial load is asked for."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.runner.checkpoint import load_state_dict as mmengine_load

from dynconv_mmdet.checkpoint import (PARTIAL_LOAD_ENV,
                                      CheckpointMismatchError, partial_loading)
from dynconv_mmdet.models.backbones import DynamicResNet


class Detector(nn.Module):
    """A stand-in detector: our backbone and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = DynamicResNet(depth=18, preset='odconv1x')
        self.head = nn.Linear(512, 3)


@pytest.fixture
def detector(monkeypatch) -> Detector:
    monkeypatch.delenv(PARTIAL_LOAD_ENV, raising=False)
    return Detector()


def _without_head(model: nn.Module) -> dict:
    return {k: v for k, v in model.state_dict().items() if 'head' not in k}


@pytest.mark.parametrize('loader', ['torch', 'mmengine'])
def test_missing_and_misshaped_keys_are_refused(detector, loader):
    load = (lambda sd: detector.load_state_dict(sd, strict=False)) \
        if loader == 'torch' else (lambda sd: mmengine_load(detector, sd))
    load(detector.state_dict())  # its own weights load
    before = detector.head.weight.clone()
    with pytest.raises(
            CheckpointMismatchError,
            match=r'(?s)missing in the checkpoint \(2\).*head'):
        load(_without_head(detector))
    wrong = detector.state_dict()
    wrong['head.weight'] = torch.zeros(4, 512)
    with pytest.raises(
            CheckpointMismatchError,
            match=r'head.weight: \(4, 512\) vs \(3, 512\)'):
        load(wrong)
    assert torch.equal(detector.head.weight, before)


def test_opt_outs_load_what_fits(detector, monkeypatch):
    state = _without_head(detector)
    with partial_loading():
        detector.load_state_dict(state, strict=False)
    monkeypatch.setenv(PARTIAL_LOAD_ENV, '1')
    mmengine_load(detector, state)


def test_guard_follows_copies_and_wrappers(detector):
    with pytest.raises(CheckpointMismatchError):
        copy.deepcopy(detector).load_state_dict(
            _without_head(detector), strict=False)
    # wrapping a guarding module (torch.compile) works and keeps prefixes
    compiled = torch.compile(detector.backbone, backend='eager')
    compiled.load_state_dict(compiled.state_dict())
    wrapper = nn.ModuleDict(dict(model=detector))
    with pytest.raises(CheckpointMismatchError):
        wrapper.load_state_dict(
            {
                f'model.{k}': v
                for k, v in _without_head(detector).items()
            },
            strict=False)


def test_unrelated_modules_are_not_guarded():
    plain = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    plain.load_state_dict({'0.weight': torch.zeros(2, 2)}, strict=False)
    assert torch.equal(plain[0].weight, torch.zeros(2, 2))
