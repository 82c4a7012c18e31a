"""With ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, a malicious checkpoint still
runs nothing through the converters or a backbone's pretrained init."""
import importlib
import os.path as osp

import pytest
from mmdet.registry import MODELS

from dynconv_mmdet.checkpoint import CheckpointError
from dynconv_mmdet.testing.malicious import (UNSAFE_ENV,
                                             save_malicious_checkpoint)


@pytest.fixture
def evil(tmp_path, monkeypatch):
    marker = str(tmp_path / 'pwned')
    path = save_malicious_checkpoint(str(tmp_path / 'evil.pth'), marker)
    monkeypatch.setenv(UNSAFE_ENV, '1')
    yield path
    assert not osp.exists(marker), 'the payload ran'


@pytest.mark.parametrize('tool, extra', [
    ('odconv_official_to_backbone', ['--arch', 'resnet']),
    ('odconv_mmdet2_detector', ['--arch', 'r50']),
    ('export_cls_backbone', []),
])
def test_converters_refuse(evil, tmp_path, tool, extra):
    cli = importlib.import_module(f'tools.model_converters.{tool}')
    dst = str(tmp_path / 'out.pth')
    with pytest.raises(SystemExit) as err:
        cli.main([evil, dst] + extra)
    assert str(err.value.code).startswith(f'error: refusing to load {evil}')
    assert not osp.exists(dst)


def test_backbone_init_refuses(evil):
    backbone = MODELS.build(
        dict(
            type='DynamicResNet', depth=18, preset='odconv1x',
            pretrained=evil))
    with pytest.raises(CheckpointError, match='refusing to load'):
        backbone.init_weights()
