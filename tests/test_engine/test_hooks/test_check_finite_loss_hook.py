# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""CheckFiniteLossHook: a NaN / infinite loss stops training at that very
iteration, before anything is logged or saved, with a message naming the
iteration and the losses; our configs use it together with the atomic
checkpoint hook.

Without it (mmengine's defaults, or mmdet's CheckInvalidLossHook that looks
every 50 iterations) the toy run below trains on and saves NaN weights.
"""
import glob
import logging
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import HOOKS

import dynconv_mmdet  # noqa: F401
from dynconv_mmdet.engine import (AtomicCheckpointHook, CheckFiniteLossHook,
                                  NonFiniteError)
from dynconv_mmdet.testing import ToyModel, toy_runner

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
FINITE_LOSS = dict(type='CheckFiniteLossHook')


def _ckpts(work_dir: str) -> list:
    return sorted(
        osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.pth')))


def _fake_runner(it: int = 6, last_ckpt=None):
    info = {} if last_ckpt is None else dict(last_ckpt=last_ckpt)
    return SimpleNamespace(
        iter=it,
        epoch=0,
        logger=logging.getLogger('test_check_finite_loss_hook'),
        message_hub=SimpleNamespace(get_info=lambda k, d=None: info.get(k, d)))


def test_registered_in_root_and_visible_from_downstream_scopes():
    from mmdet.registry import HOOKS as MMDET_HOOKS
    from mmpretrain.registry import HOOKS as MMPRETRAIN_HOOKS
    for registry in (HOOKS, MMDET_HOOKS, MMPRETRAIN_HOOKS):
        assert registry.get('CheckFiniteLossHook') is CheckFiniteLossHook


@pytest.mark.parametrize('loss', [
    torch.tensor(0.5),
    0.5,
    torch.tensor(1e30),
])
def test_finite_loss_passes(loss):
    CheckFiniteLossHook().after_train_iter(
        _fake_runner(), 0, outputs=dict(loss=loss))


@pytest.mark.parametrize('loss, shown', [
    (torch.tensor(float('nan')), 'loss=nan'),
    (torch.tensor(float('inf')), 'loss=inf'),
    (float('-inf'), 'loss=-inf'),
])
def test_non_finite_loss_stops(loss, shown):
    with pytest.raises(NonFiniteError) as info:
        CheckFiniteLossHook().after_train_iter(
            _fake_runner(it=6, last_ckpt='work/iter_6.pth'),
            0,
            outputs=dict(loss=loss, acc=torch.tensor(50.0)))
    message = str(info.value)
    assert 'training stopped at iteration 7 (epoch 1)' in message
    assert shown in message
    assert 'No checkpoint of these weights was written' in message
    assert 'work/iter_6.pth' in message
    assert 'learning rate' in message and '--resume' in message


def test_message_names_the_non_finite_losses():
    outputs = dict(
        loss=torch.tensor(float('nan')),
        loss_cls=torch.tensor(0.3),
        loss_bbox=torch.tensor(float('nan')),
        loss_rpn_bbox=torch.tensor(float('inf')),
        acc=torch.tensor(float('nan')))
    with pytest.raises(NonFiniteError) as info:
        CheckFiniteLossHook().after_train_iter(
            _fake_runner(), 0, outputs=outputs)
    message = str(info.value)
    assert '(not finite: loss_bbox=nan, loss_rpn_bbox=inf)' in message
    assert 'loss_cls' not in message and 'acc' not in message
    assert 'No checkpoint was written in this run' in message


def test_nothing_to_check():
    hook = CheckFiniteLossHook()
    hook.after_train_iter(_fake_runner(), 0, outputs=None)
    hook.after_train_iter(
        _fake_runner(), 0, outputs=dict(acc=torch.tensor(float('nan'))))


def test_runs_before_the_logger_and_the_checkpoint_hook(tmp_path):
    runner = toy_runner(str(tmp_path), finite_loss=FINITE_LOSS)
    names = [type(h).__name__ for h in runner.hooks]
    position = names.index('CheckFiniteLossHook')
    assert position < names.index('LoggerHook')
    assert position < names.index('AtomicCheckpointHook')


def test_diverging_run_stops_and_keeps_the_last_finite_checkpoint(tmp_path):
    """The loss of iteration 3 is NaN: training stops there; iter_2.pth is
    the latest checkpoint and holds finite weights."""
    work_dir = str(tmp_path)
    runner = toy_runner(
        work_dir, model=ToyModel(nan_at=3), finite_loss=FINITE_LOSS)
    with pytest.raises(NonFiniteError) as info:
        runner.train()
    message = str(info.value)
    assert 'training stopped at iteration 3' in message
    assert 'loss=nan' in message
    assert osp.join(work_dir, 'iter_2.pth') in message
    assert runner.iter == 2  # iteration 3 never completed
    assert _ckpts(work_dir) == ['iter_2.pth']
    state = torch.load(
        osp.join(work_dir, 'iter_2.pth'),
        map_location='cpu',
        weights_only=True)['state_dict']
    assert all(bool(torch.isfinite(v).all()) for v in state.values())


def test_names_the_diverging_loss_term(tmp_path):
    runner = toy_runner(
        str(tmp_path),
        model=ToyModel(nan_at=1, split_loss=True),
        finite_loss=FINITE_LOSS)
    with pytest.raises(NonFiniteError, match=r'not finite: loss_reg=nan\)'):
        runner.train()
    assert _ckpts(str(tmp_path)) == []


def test_without_the_hook_nan_weights_are_trained_on(tmp_path):
    """What the hook prevents: mmengine's checkpoint hook saves the NaN
    weights and training ends normally."""
    work_dir = str(tmp_path)
    toy_runner(
        work_dir,
        model=ToyModel(nan_at=3),
        checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
    ).train()
    state = torch.load(
        osp.join(work_dir, 'iter_6.pth'),
        map_location='cpu',
        weights_only=True)['state_dict']
    assert not bool(torch.isfinite(state['linear.weight']).all())


def _our_configs() -> list:
    detection = sorted(glob.glob(osp.join(REPO, 'configs', '*.py')))
    toy = sorted(glob.glob(osp.join(REPO, 'configs', 'toy', '*.py')))
    classification = sorted(
        glob.glob(
            osp.join(REPO, 'projects', 'classification', 'configs', '*',
                     '*.py')))
    classification = [
        p for p in classification if osp.sep + '_base_' + osp.sep not in p
    ]
    return detection + toy + classification


@pytest.mark.parametrize(
    'path',
    _our_configs(),
    ids=lambda p: osp.relpath(p, REPO).replace(osp.sep, '/'))
def test_every_config_of_ours_uses_both_hooks(path):
    cfg = Config.fromfile(path)
    hooks = cfg.default_hooks
    assert HOOKS.get(hooks.checkpoint.type) is AtomicCheckpointHook
    assert HOOKS.get(hooks.finite_loss.type) is CheckFiniteLossHook
