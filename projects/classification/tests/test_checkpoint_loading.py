"""The classification tools read checkpoints safely, whatever the
environment, and load them strictly (dynconv_mmdet's SafeLoadRunner)."""
import importlib
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import dynconv_mmdet  # noqa: F401
from dynconv_mmdet.testing.malicious import (UNSAFE_ENV,
                                             save_malicious_checkpoint)

PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_CONFIG = osp.join(PROJECT, 'configs', 'toy',
                      'odconv1x_resnet18-c16_1xb8_toy-32px.py')
generate_toy_imagenet = importlib.import_module(
    'projects.classification.tools.create_toy_imagenet').generate_toy_imagenet


@pytest.fixture(scope='module')
def data_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('cls_loading') / 'toy_imagenet')
    generate_toy_imagenet(
        root, num_classes=8, train_per_class=1, val_per_class=1)
    return root


def _build(model_cfg):
    # the project's models live in mmpretrain's scope, whatever the scope a
    # previous test left current
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(model_cfg)


def _run_test_tool(monkeypatch, argv) -> None:
    tool = importlib.import_module('projects.classification.tools.test')
    monkeypatch.setattr(sys, 'argv', ['test.py'] + argv)
    tool.main()


def _options(data_root: str, work_dir: str) -> list:
    return [
        '--work-dir', work_dir, '--cfg-options',
        f'test_dataloader.dataset.data_root={data_root}'
    ]


def test_test_tool_refuses_another_model(data_root, tmp_path, monkeypatch):
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.model.head.num_classes = 5  # another data set
    other = _build(cfg.model)
    path = str(tmp_path / 'other.pth')
    torch.save({'state_dict': other.state_dict(), 'meta': {}}, path)
    with pytest.raises(SystemExit) as err:
        _run_test_tool(monkeypatch, [TOY_CONFIG, path] +
                       _options(data_root, str(tmp_path / 'work')))
    message = str(err.value.code)
    assert message.startswith(f'error: checkpoint {path} does not fit')
    assert 'head.fc.weight: (5, 128) vs (8, 128)' in message


def test_test_tool_refuses_malicious_weights(data_root, tmp_path, monkeypatch):
    marker = str(tmp_path / 'pwned')
    model = _build(Config.fromfile(TOY_CONFIG).model)
    evil = save_malicious_checkpoint(
        str(tmp_path / 'evil.pth'), marker, state_dict=model.state_dict())
    monkeypatch.setenv(UNSAFE_ENV, '1')
    with pytest.raises(SystemExit) as err:
        _run_test_tool(monkeypatch, [TOY_CONFIG, evil] +
                       _options(data_root, str(tmp_path / 'work')))
    assert str(err.value.code).startswith(f'error: refusing to load {evil}')
    assert not osp.exists(marker)


def test_tools_select_the_safe_runner(monkeypatch):
    test = importlib.import_module('projects.classification.tools.test')
    train = importlib.import_module('projects.classification.tools.train')
    monkeypatch.setattr(sys, 'argv',
                        ['test.py', TOY_CONFIG, 'x.pth', '--partial-load'])
    cfg = test.merge_args(Config.fromfile(TOY_CONFIG), test.parse_args())
    assert cfg.runner_type == 'SafeLoadRunner' and cfg.strict_load is False
    monkeypatch.setattr(sys, 'argv', ['train.py', TOY_CONFIG, '--resume'])
    cfg = train.merge_args(Config.fromfile(TOY_CONFIG), train.parse_args())
    assert cfg.runner_type == 'SafeLoadRunner' and cfg.resume
