"""SafeLoadRunner: safe reading, strict loading, a config switch, and the
resume checkpoint chosen by ``find_resume_checkpoint``."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import RUNNERS

import dynconv_mmdet.engine.runner as runner_module
from dynconv_mmdet.checkpoint import CheckpointError, CheckpointMismatchError
from dynconv_mmdet.engine import SafeLoadRunner
from dynconv_mmdet.testing import ToyModel
from dynconv_mmdet.testing.malicious import (UNSAFE_ENV,
                                             save_malicious_checkpoint)


class _Recorder(Hook):

    def __init__(self) -> None:
        self.loaded = []

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self.loaded.append(checkpoint['meta'])


def _runner(tmp_path, **cfg) -> SafeLoadRunner:
    recorder = _Recorder()
    runner = SafeLoadRunner(
        model=ToyModel(),
        work_dir=str(tmp_path / 'work'),
        custom_hooks=[recorder],
        cfg=dict(cfg))
    runner.recorder = recorder
    return runner


def _save(tmp_path, name: str, out_features: int = 1) -> str:
    model = ToyModel()
    model.linear = torch.nn.Linear(2, out_features)
    torch.nn.init.constant_(model.linear.weight, 0.5)
    path = str(tmp_path / name)
    torch.save({'state_dict': model.state_dict(), 'meta': {'iter': 3}}, path)
    return path


def test_registered_in_the_root_registry():
    assert RUNNERS.get('SafeLoadRunner') is SafeLoadRunner


def test_load_checkpoint_is_strict_by_default(tmp_path):
    runner = _runner(tmp_path)
    checkpoint = runner.load_checkpoint(_save(tmp_path, 'fits.pth'))
    assert checkpoint['meta'] == {'iter': 3}
    assert runner.recorder.loaded == [{'iter': 3}]
    assert bool((runner.model.linear.weight == 0.5).all())

    wrong = _save(tmp_path, 'wrong.pth', out_features=2)
    with pytest.raises(
            CheckpointMismatchError,
            match=r'linear.weight: \(2, 2\) vs \(1, 2\)'):
        runner.load_checkpoint(wrong)


def test_config_switch_allows_partial_loading(tmp_path):
    runner = _runner(tmp_path, strict_load=False)
    before = runner.model.linear.weight.clone()
    runner.load_checkpoint(_save(tmp_path, 'wrong.pth', out_features=2))
    assert torch.equal(runner.model.linear.weight, before)
    # an explicit argument wins over the config
    with pytest.raises(CheckpointMismatchError):
        runner.load_checkpoint(
            _save(tmp_path, 'wrong.pth', out_features=2), strict=True)


def test_load_from_is_read_safely_whatever_the_environment(
        tmp_path, monkeypatch):
    marker = str(tmp_path / 'pwned')
    evil = save_malicious_checkpoint(
        str(tmp_path / 'evil.pth'), marker, state_dict=ToyModel().state_dict())
    monkeypatch.setenv(UNSAFE_ENV, '1')
    runner = SafeLoadRunner(
        model=ToyModel(), work_dir=str(tmp_path / 'work'), load_from=evil)
    with pytest.raises(CheckpointError, match='refusing to load'):
        runner.load_or_resume()
    assert not osp.exists(marker)


@pytest.mark.parametrize('found', [True, False])
def test_auto_resume_asks_find_resume_checkpoint(tmp_path, monkeypatch, found):
    path = _save(tmp_path, 'iter_3.pth')
    asked, resumed = [], []

    def find(work_dir, logger):
        asked.append(work_dir)
        return path if found else None

    monkeypatch.setattr(runner_module, 'find_resume_checkpoint', find)
    runner = SafeLoadRunner(
        model=ToyModel(), work_dir=str(tmp_path / 'work'), resume=True)
    monkeypatch.setattr(runner, 'resume', resumed.append)
    runner.load_or_resume()
    assert asked == [str(tmp_path / 'work')]
    assert resumed == ([path] if found else [])


def _detection_configs() -> list:
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    return sorted(
        glob.glob(osp.join(repo, 'configs', '*.py')) +
        glob.glob(osp.join(repo, 'configs', 'toy', '*.py')))


@pytest.mark.parametrize(
    'path', _detection_configs(), ids=lambda p: osp.basename(p))
def test_every_detection_config_loads_safely_and_strictly(path):
    """``tools/train.py`` builds the runner the config names: ours, for
    ``load_from`` and ``--resume`` to be safe and strict."""
    cfg = Config.fromfile(path)
    assert RUNNERS.get(cfg.get('runner_type', 'Runner')) is SafeLoadRunner
    assert cfg.get('strict_load', True) is True
