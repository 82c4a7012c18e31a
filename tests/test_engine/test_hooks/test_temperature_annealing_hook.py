"""Tests of TemperatureAnnealingHook (DyConv, CVPR 2020; ODConv, ICLR 2022).

The end-to-end check (a real mmengine Runner, training, resume in the middle
of the annealing) is in ``test_classification_project.py``.
"""
import logging
from types import SimpleNamespace

import pytest
import torch.nn as nn
from mmengine.registry import HOOKS

import dynconv_mmdet  # noqa: F401
from dynconv_mmdet.engine import TemperatureAnnealingHook
from dynconv_mmdet.models.layers import (CondConv2d, DyConv2d, ODConv2d,
                                         get_temperatures)


def official_temperature(iteration: int,
                         epoch: int,
                         iters_per_epoch: int,
                         temp_epoch: int = 10,
                         temp_init: float = 30.0) -> float:
    """``get_temperature`` of the official ODConv training script.

    ``iteration`` is the 1-based index inside ``epoch`` (it is called with
    ``i + 1`` before iteration ``i``).
    """
    total = iters_per_epoch * temp_epoch
    current = iteration + epoch * iters_per_epoch
    return 1.0 + max(0.0, (temp_init - 1.0) * (total - current) / total)


def tiny_model(temperature: float = 7.0) -> nn.Module:
    return nn.Sequential(
        DyConv2d(4, 8, 3, padding=1, temperature=temperature),
        ODConv2d(8, 8, 3, padding=1, kernel_num=4, temperature=temperature),
        CondConv2d(8, 8, 1),
    )


def fake_runner(model: nn.Module, iters_per_epoch: int, it: int = 0):
    return SimpleNamespace(
        model=model,
        iter=it,
        train_loop=SimpleNamespace(dataloader=[None] * iters_per_epoch),
        logger=logging.getLogger('test_temperature_hook'))


def temperatures(model: nn.Module) -> list:
    return list(get_temperatures(model).values())


def assert_temperature(model: nn.Module, expected: float) -> None:
    """Both temperature layers of :func:`tiny_model` hold ``expected``."""
    values = temperatures(model)
    assert len(values) == 2
    assert values == pytest.approx([expected] * 2, abs=1e-9)


def test_registered_in_root_and_visible_from_downstream_scopes():
    from mmdet.registry import HOOKS as MMDET_HOOKS
    from mmpretrain.registry import HOOKS as MMPRETRAIN_HOOKS
    assert HOOKS.get('TemperatureAnnealingHook') is TemperatureAnnealingHook
    for registry in (MMDET_HOOKS, MMPRETRAIN_HOOKS):
        hook = registry.build(
            dict(type='TemperatureAnnealingHook', start=20.0, epochs=3))
        assert isinstance(hook, TemperatureAnnealingHook)
        assert (hook.start, hook.end, hook.epochs) == (20.0, None, 3)
        # the end point not given comes from each family's schedule
        assert hook.schedule(ODConv2d) == (20.0, 1.0, 3, None)
        assert hook.schedule(DyConv2d) == (20.0, 1.0, 3, None)


@pytest.mark.parametrize('iters_per_epoch', [1, 7, 100])
def test_schedule_matches_official_code(iters_per_epoch):
    hook = TemperatureAnnealingHook()
    model = tiny_model()
    runner = fake_runner(model, iters_per_epoch)
    hook.before_train(runner)
    total = 10 * iters_per_epoch
    for k in list(range(0, total + 3)) + [12 * iters_per_epoch + 1]:
        runner.iter = k
        hook.before_train_iter(runner, batch_idx=k % iters_per_epoch)
        epoch, i = divmod(k, iters_per_epoch)
        expected = (
            official_temperature(i + 1, epoch, iters_per_epoch)
            if epoch < 10 else 1.0)
        assert_temperature(model, expected)
    # first iteration slightly below 30, last annealing iteration exactly 1
    for family in (DyConv2d, ODConv2d):
        assert hook.temperature_at(1, total,
                                   family) == pytest.approx(30 - 29 / total)
        assert hook.temperature_at(total, total, family) == 1.0


def test_value_depends_on_runner_iter_only():
    """A resumed run (fresh hook, runner.iter > 0) continues the schedule."""
    ipe = 5
    reference = TemperatureAnnealingHook(start=30.0, end=1.0, epochs=2)
    expected = [reference.temperature_at(k + 1, 2 * ipe) for k in range(12)]
    assert expected[0] == pytest.approx(30 - 29 / 10)
    assert expected[9:] == [1.0, 1.0, 1.0]

    model = tiny_model()
    resumed = TemperatureAnnealingHook(start=30.0, end=1.0, epochs=2)
    runner = fake_runner(model, ipe, it=7)
    resumed.before_train(runner)  # as after `runner.resume()`
    assert_temperature(model, expected[7])
    # calling twice, or out of order, does not advance anything
    for k in (7, 7, 3, 8, 8, 11, 4):
        runner.iter = k
        resumed.before_train_iter(runner, batch_idx=0)
        assert_temperature(model, expected[k])


def test_custom_end_points_and_iteration_length():
    hook = TemperatureAnnealingHook(start=10.0, end=2.0, epochs=None, iters=4)
    model = tiny_model()
    runner = fake_runner(model, iters_per_epoch=1000)
    hook.before_train(runner)
    seen = []
    for k in range(6):
        runner.iter = k
        hook.before_train_iter(runner, batch_idx=k)
        seen.append(temperatures(model)[0])
    assert seen == pytest.approx([8.0, 6.0, 4.0, 2.0, 2.0, 2.0])


def test_unwraps_model_wrappers():
    inner = tiny_model()
    wrapped = nn.DataParallel(inner)  # registered in MODEL_WRAPPERS
    hook = TemperatureAnnealingHook(epochs=1)
    runner = fake_runner(wrapped, iters_per_epoch=2, it=0)
    hook.before_train(runner)
    assert_temperature(inner, 15.5)


def test_evaluation_temperature():
    ipe = 4
    model = tiny_model()
    # during training: the temperature of the last trained iteration
    hook = TemperatureAnnealingHook(epochs=2)
    runner = fake_runner(model, ipe, it=4)
    hook.before_train(runner)
    hook.before_val_epoch(runner)
    assert_temperature(model, 15.5)

    # stand-alone test of a checkpoint: from its meta
    for meta, expected in ((dict(epoch=1,
                                 iter=4), 15.5), (dict(epoch=2, iter=8), 1.0),
                           (dict(epoch=7, iter=28), 1.0)):
        hook = TemperatureAnnealingHook(epochs=2)
        runner = fake_runner(model, ipe, it=0)
        hook.after_load_checkpoint(runner, dict(meta=meta, state_dict={}))
        hook.before_test_epoch(runner)
        assert_temperature(model, expected)
        hook.before_val_epoch(runner)
        assert_temperature(model, expected)

    # exported / third-party weights carry no progress: fully trained
    hook = TemperatureAnnealingHook(epochs=2)
    runner = fake_runner(model, ipe, it=0)
    hook.after_load_checkpoint(runner, dict(state_dict={}))
    hook.before_test_epoch(runner)
    assert_temperature(model, 1.0)


def test_model_without_temperature_layers_is_left_alone():
    model = nn.Sequential(CondConv2d(4, 4, 3, padding=1), nn.ReLU())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hook = TemperatureAnnealingHook()
    runner = fake_runner(model, 3)
    hook.before_train(runner)
    hook.before_train_iter(runner, batch_idx=0)
    assert get_temperatures(model) == {}
    for k, v in model.state_dict().items():
        assert v.equal(before[k])


@pytest.mark.parametrize('kwargs', [
    dict(epochs=3, iters=10),
    dict(epochs=0),
    dict(epochs=2.5),
    dict(iters=-1),
    dict(end=-1.0),
    dict(start=float('nan')),
    dict(start=float('inf')),
])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        TemperatureAnnealingHook(**kwargs)


def test_value_outside_a_familys_range_is_refused_at_start():
    # 0 is a valid start for some families (KernelWarehouse's one-hot
    # blend) but not for DyConv / ODConv, whose logits it divides
    hook = TemperatureAnnealingHook(start=0.0, end=0.0, epochs=1)
    runner = fake_runner(tiny_model(), iters_per_epoch=2)
    with pytest.raises(ValueError, match='DyConv2d: temperature must be in'):
        hook.before_train(runner)


def test_each_family_follows_its_own_schedule():

    class SlowConv2d(DyConv2d):
        temperature_schedule = dict(start=5.0, end=2.0, epochs=4)
        temperature_default = 2.0

    model = nn.Sequential(
        DyConv2d(4, 4, 3, padding=1), SlowConv2d(4, 4, 3, padding=1))
    hook = TemperatureAnnealingHook()
    runner = fake_runner(model, iters_per_epoch=1, it=0)
    hook.before_train(runner)
    # DyConv: 30 -> 1 over 10 iterations; SlowConv: 5 -> 2 over 4
    assert temperatures(model) == pytest.approx([30 - 29 / 10, 5 - 3 / 4])
    runner.iter = 5
    hook.before_train_iter(runner, batch_idx=0)
    assert temperatures(model) == pytest.approx([30 - 29 * 6 / 10, 2.0])
    # a length given to the hook applies to both
    hook = TemperatureAnnealingHook(iters=2)
    runner.iter = 0
    hook.before_train(runner)
    assert temperatures(model) == pytest.approx([15.5, 3.5])
