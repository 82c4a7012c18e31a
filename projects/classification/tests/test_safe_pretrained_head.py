"""A classifier's head ``init_cfg`` (mmengine's ``Pretrained``) reads
through dynconv_mmdet's safe reader, whatever the environment says."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import dynconv_mmdet  # noqa: F401
from dynconv_mmdet.checkpoint import CheckpointError
from dynconv_mmdet.testing.malicious import (UNSAFE_ENV,
                                             save_malicious_checkpoint)

PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_CONFIG = osp.join(PROJECT, 'configs', 'toy',
                      'odconv1x_resnet18-c16_1xb8_toy-32px.py')


def _classifier(head_init_cfg: dict) -> torch.nn.Module:
    cfg = Config.fromfile(TOY_CONFIG).model
    cfg.head.init_cfg = head_init_cfg
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


def test_head_pretrained_refuses_a_payload(tmp_path, monkeypatch):
    marker = str(tmp_path / 'pwned')
    evil = save_malicious_checkpoint(
        str(tmp_path / 'evil.pth'),
        marker,
        state_dict={
            'head.fc.weight': torch.zeros(8, 128),
            'head.fc.bias': torch.zeros(8)
        })
    monkeypatch.setenv(UNSAFE_ENV, '1')
    model = _classifier(
        dict(type='Pretrained', checkpoint=evil, prefix='head.'))
    with pytest.raises(CheckpointError, match=f'^refusing to load {evil}'):
        model.init_weights()
    assert not osp.exists(marker), 'the payload ran'


def test_head_pretrained_still_loads(tmp_path):
    weight, bias = torch.randn(8, 128), torch.randn(8)
    path = str(tmp_path / 'head.pth')
    torch.save(
        {
            'state_dict': {
                'head.fc.weight': weight,
                'head.fc.bias': bias
            },
            'meta': {}
        }, path)
    model = _classifier(
        dict(type='Pretrained', checkpoint=path, prefix='head.'))
    model.init_weights()
    assert torch.equal(model.head.fc.weight, weight)
    assert torch.equal(model.head.fc.bias, bias)
