# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The backbones reach the strict ``Pretrained`` loader through the hook
that ``dynconv_mmdet.checkpoint`` registers (models never import
checkpoint)."""
import pytest
import torch.nn as nn

import dynconv_mmdet.checkpoint.backbone as backbone_loader
from dynconv_mmdet.models.backbones import pretrained_mixin
from dynconv_mmdet.models.backbones.pretrained_mixin import (
    PretrainedLoaderMixin, pretrained_loader, register_pretrained_loader)


class _Module(nn.Module):

    def init_weights(self) -> None:
        pass


class _Backbone(PretrainedLoaderMixin, _Module):
    pretrained_arch = 'resnet'

    def __init__(self, init_cfg, strict_pretrained=True) -> None:
        super().__init__()
        self.rest = self._split_init_cfg(init_cfg, strict_pretrained)


def test_checkpoint_registers_the_strict_loader():
    assert pretrained_loader() is backbone_loader._load_backbone_pretrained


def test_init_weights_calls_the_registered_loader(monkeypatch):
    calls = []
    monkeypatch.setattr(pretrained_mixin, '_LOADER', None)
    assert register_pretrained_loader(
        lambda *args: calls.append(args)) is pretrained_loader()
    model = _Backbone(
        dict(type='Pretrained', checkpoint='x.pth', prefix='backbone.'),
        strict_pretrained=False)
    model.init_weights()
    assert calls == [(model, 'x.pth', 'resnet', 'backbone.', False)]


def test_no_loader_registered_says_what_to_import(monkeypatch):
    monkeypatch.setattr(pretrained_mixin, '_LOADER', None)
    model = _Backbone(dict(type='Pretrained', checkpoint='x.pth'))
    with pytest.raises(RuntimeError, match='import dynconv_mmdet'):
        model.init_weights()
    _Backbone(None).init_weights()  # nothing to load: no loader needed
