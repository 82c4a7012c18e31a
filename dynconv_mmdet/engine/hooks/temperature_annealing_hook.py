"""Temperature annealing of the dynamic convs during ImageNet training.

DyConv (Chen et al., "Dynamic Convolution: Attention over Convolution
Kernels", CVPR 2020) divides the kernel-attention logits by a temperature
that starts at 30 and decreases linearly to 1 during the first 10 ImageNet
epochs, so that all kernels receive gradients early in training. ODConv (Li,
Zhou and Yao, "Omni-Dimensional Dynamic Convolution", ICLR 2022) keeps this
schedule for all four of its attentions; its official training script updates
the temperature before every iteration with::

    T = 1 + max(0, (T0 - 1) * (N - n) / N)

where ``N`` is the number of iterations in the annealing epochs and ``n`` the
1-based global index of the iteration about to run. KernelWarehouse (Li and
Yao, ICML 2024) anneals its blend with the one-hot assignment from 1 to 0
over 20 epochs with the same per-iteration rule.

Each family declares its schedule (``temperature_schedule`` of its class);
this hook applies it, or the end points and length given in the config, and
is the only place where the temperature of a model changes during training.
"""
import math
from typing import Callable, Optional, Tuple, Union

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

DATA_BATCH = Optional[Union[dict, tuple, list]]


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


Schedule = Tuple[float, float, Optional[int], Optional[int]]


@HOOKS.register_module()
class TemperatureAnnealingHook(Hook):
    """Anneal the temperature of every dynamic conv that has one.

    Before the training iteration with 0-based global index ``k``
    (``runner.iter``) the temperature of every such layer of the unwrapped
    model is set to::

        start + (end - start) * min((k + 1) / total_iters, 1)

    with ``total_iters = epochs * iters_per_epoch`` (or ``iters``). The first
    iteration therefore runs slightly off ``start``, the last annealing
    iteration runs exactly at ``end`` and every later iteration at ``end``,
    as in the official ODConv and KernelWarehouse code. Since the value is a
    function of ``runner.iter`` only, a run resumed in the middle of the
    annealing continues the schedule exactly where it stopped.

    ``start``, ``end`` and the length default, per layer, to its family's
    ``temperature_schedule`` (DyConv / ODConv: 30 -> 1 over 10 epochs;
    KernelWarehouse: 1 -> 0 over 20 epochs); a value given here applies to
    every family (and must lie in each family's valid range). A family with
    a temperature but no schedule stays at its ``temperature_default``.

    Validation during training uses the temperature of the last trained
    iteration. A stand-alone validation / test (``tools/test.py``) derives it
    from the ``meta`` of the loaded checkpoint (epoch and iteration); weights
    without such meta (exported or third-party checkpoints) are treated as
    fully trained and evaluated at ``end``.

    Args:
        start (float, optional): Temperature at the beginning.
        end (float, optional): Temperature after the annealing.
        epochs (int, optional): Length of the annealing in epochs of the
            training dataloader.
        iters (int, optional): Length of the annealing in iterations; use it
            instead of ``epochs`` (e.g. with ``IterBasedTrainLoop``).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 start: Optional[float] = None,
                 end: Optional[float] = None,
                 epochs: Optional[int] = None,
                 iters: Optional[int] = None) -> None:
        if epochs is not None and iters is not None:
            raise ValueError('TemperatureAnnealingHook: give at most one of '
                             f'`epochs` and `iters`, got epochs={epochs!r}, '
                             f'iters={iters!r}')
        for name, length in (('epochs', epochs), ('iters', iters)):
            if length is None:
                continue
            if isinstance(length, bool) or not isinstance(length, int) \
                    or length < 1:
                raise ValueError('TemperatureAnnealingHook: the annealing '
                                 f'length `{name}` must be a positive '
                                 f'integer, got {length!r}')
        for name, value in (('start', start), ('end', end)):
            if value is None:
                continue
            if not (isinstance(value, (int, float)) and math.isfinite(value)
                    and value >= 0):
                raise ValueError('TemperatureAnnealingHook: `{}` must be a '
                                 'finite number >= 0, got {!r}'.format(
                                     name, value))
        self.start = None if start is None else float(start)
        self.end = None if end is None else float(end)
        self.epochs = epochs
        self.iters = iters
        self._iters_per_epoch: Optional[int] = None
        self._in_training = False
        self._ckpt_meta: Optional[dict] = None
        self._warned_empty = False

    # schedule ---------------------------------------------------------------
    def schedule(self, family: type) -> Schedule:
        """``(start, end, epochs, iters)`` for layers of class ``family``:
        the values given to the hook, else the family's own."""
        own = dict(family.temperature_schedule or {})
        default = family.temperature_default
        start = self.start if self.start is not None else own.get(
            'start', default)
        end = self.end if self.end is not None else own.get('end', default)
        if self.epochs is not None or self.iters is not None:
            return start, end, self.epochs, self.iters
        epochs, iters = own.get('epochs'), own.get('iters')
        if epochs is None and iters is None:
            epochs = 1  # a constant schedule: any length gives `end`
        return start, end, epochs, iters

    def temperature_at(self,
                       completed_iters: int,
                       total_iters: int,
                       family: Optional[type] = None) -> float:
        """Temperature after ``completed_iters`` of ``total_iters``.

        Training iteration ``k`` (0-based) uses
        ``temperature_at(k + 1, total_iters, family)``. Without ``family``
        the hook's own ``start`` / ``end`` are used.
        """
        if family is None:
            start, end = self.start, self.end
        else:
            start, end = self.schedule(family)[:2]
        progress = min(max(completed_iters, 0) / total_iters, 1.0)
        if progress >= 1.0:
            return end
        return start + (end - start) * progress

    def _total_iters(self, family: type) -> int:
        _, _, epochs, iters = self.schedule(family)
        if iters is not None:
            return iters
        if self._iters_per_epoch is None:
            raise RuntimeError('TemperatureAnnealingHook: the annealing '
                               'length in epochs is known only in training')
        return epochs * self._iters_per_epoch

    def _set_iters_per_epoch(self, runner) -> None:
        iters_per_epoch = len(runner.train_loop.dataloader)
        if iters_per_epoch < 1:
            raise RuntimeError('TemperatureAnnealingHook: the training '
                               'dataloader is empty')
        self._iters_per_epoch = iters_per_epoch

    def _apply(self, runner, value: Callable[[type], float]) -> None:
        # Imported here so that registering the hook does not import the
        # layers (and their registries) before they are needed.
        from dynconv_mmdet.models.layers import set_temperature
        touched = set_temperature(_unwrap(runner.model), value)
        if touched == 0 and not self._warned_empty:
            self._warned_empty = True
            runner.logger.warning(
                'TemperatureAnnealingHook: the model has no layer with a '
                'temperature; the hook does nothing.')

    def _training_value(self, completed_iters: int) -> Callable[[type], float]:
        return lambda family: self.temperature_at(
            completed_iters, self._total_iters(family), family)

    # hooks ------------------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Remember the progress stored in a loaded checkpoint."""
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) \
            else None
        self._ckpt_meta = meta if isinstance(meta, dict) else {}

    def before_train(self, runner) -> None:
        """Compute the annealing length and set the current temperature."""
        self._set_iters_per_epoch(runner)
        self._in_training = True
        self._apply(runner, self._training_value(runner.iter + 1))

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Set the temperature of the iteration ``runner.iter``."""
        if not self._in_training:
            self._set_iters_per_epoch(runner)
            self._in_training = True
        self._apply(runner, self._training_value(runner.iter + 1))

    def _evaluation_value(self, runner) -> Callable[[type], float]:
        if self._in_training:
            # Inside a training run: the temperature of the last iteration.
            return self._training_value(runner.iter)
        meta = self._ckpt_meta
        if not meta or 'iter' not in meta:
            return lambda family: self.schedule(family)[1]
        done_iters = int(meta['iter'])
        done_epochs = int(meta.get('epoch', 0))
        if done_iters > 0 and done_epochs == 0 and self.iters is None:
            runner.logger.warning(
                'TemperatureAnnealingHook: cannot tell the annealing '
                'progress of the loaded checkpoint (meta iter='
                f'{done_iters}, epoch=0) unless the length is given in '
                '`iters`; evaluating at the final temperature.')

        def value(family: type) -> float:
            _, end, epochs, iters = self.schedule(family)
            if iters is not None:
                return self.temperature_at(done_iters, iters, family)
            if done_epochs > 0:
                # Epoch-based runs save their checkpoints at epoch ends.
                return self.temperature_at(done_epochs, epochs, family)
            return end

        return value

    def before_val_epoch(self, runner) -> None:
        """Evaluate with the temperature the weights were trained with."""
        self._apply(runner, self._evaluation_value(runner))

    def before_test_epoch(self, runner) -> None:
        """Evaluate with the temperature the weights were trained with."""
        self._apply(runner, self._evaluation_value(runner))
