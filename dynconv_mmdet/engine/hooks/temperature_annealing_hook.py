"""Temperature annealing of the attention softmax of DyConv and ODConv.

DyConv (Chen et al., "Dynamic Convolution: Attention over Convolution
Kernels", CVPR 2020) divides the kernel-attention logits by a temperature
that starts at 30 and decreases linearly to 1 during the first 10 ImageNet
epochs, so that all kernels receive gradients early in training. ODConv (Li,
Zhou and Yao, "Omni-Dimensional Dynamic Convolution", ICLR 2022) keeps this
schedule for all four of its attentions; its official training script updates
the temperature before every iteration with::

    T = 1 + max(0, (T0 - 1) * (N - n) / N)

where ``N`` is the number of iterations in the annealing epochs and ``n`` the
1-based global index of the iteration about to run. This hook reproduces that
schedule with configurable end points and is the only place where the
temperature of a model changes during training.
"""
import math
from typing import Optional, Union

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

DATA_BATCH = Optional[Union[dict, tuple, list]]


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class TemperatureAnnealingHook(Hook):
    """Anneal the temperature of every DyConv2d / ODConv2d layer.

    Before the training iteration with 0-based global index ``k``
    (``runner.iter``) the temperature of all dynamic layers of the unwrapped
    model is set to::

        start + (end - start) * min((k + 1) / total_iters, 1)

    with ``total_iters = epochs * iters_per_epoch`` (or ``iters``). The first
    iteration therefore runs slightly below ``start``, the last annealing
    iteration runs exactly at ``end`` and every later iteration at ``end``,
    as in the official ODConv code. Since the value is a function of
    ``runner.iter`` only, a run resumed in the middle of the annealing
    continues the schedule exactly where it stopped.

    Validation during training uses the temperature of the last trained
    iteration. A stand-alone validation / test (``tools/test.py``) derives it
    from the ``meta`` of the loaded checkpoint (epoch and iteration); weights
    without such meta (exported or third-party checkpoints) are treated as
    fully trained and evaluated at ``end``.

    Args:
        start (float): Temperature at the beginning. Defaults to 30.
        end (float): Temperature after the annealing. Defaults to 1.
        epochs (int, optional): Length of the annealing in epochs of the
            training dataloader. Defaults to 10.
        iters (int, optional): Length of the annealing in iterations; use it
            instead of ``epochs`` (e.g. with ``IterBasedTrainLoop``).
            Defaults to None.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 start: float = 30.0,
                 end: float = 1.0,
                 epochs: Optional[int] = 10,
                 iters: Optional[int] = None) -> None:
        if (epochs is None) == (iters is None):
            raise ValueError('TemperatureAnnealingHook: give exactly one of '
                             f'`epochs` and `iters`, got epochs={epochs!r}, '
                             f'iters={iters!r}')
        length = epochs if iters is None else iters
        if isinstance(length, bool) or not isinstance(length, int) \
                or length < 1:
            raise ValueError('TemperatureAnnealingHook: the annealing length '
                             f'must be a positive integer, got {length!r}')
        for name, value in (('start', start), ('end', end)):
            if not (isinstance(value, (int, float)) and math.isfinite(value)
                    and value > 0):
                raise ValueError('TemperatureAnnealingHook: `{}` must be a '
                                 'positive number, got {!r}'.format(
                                     name, value))
        self.start = float(start)
        self.end = float(end)
        self.epochs = epochs
        self.iters = iters
        self._total_iters: Optional[int] = None
        self._ckpt_meta: Optional[dict] = None
        self._warned_empty = False

    # schedule ---------------------------------------------------------------
    def temperature_at(self, completed_iters: int, total_iters: int) -> float:
        """Temperature after ``completed_iters`` of ``total_iters``.

        Training iteration ``k`` (0-based) uses
        ``temperature_at(k + 1, total_iters)``.
        """
        progress = min(max(completed_iters, 0) / total_iters, 1.0)
        if progress >= 1.0:
            return self.end
        return self.start + (self.end - self.start) * progress

    def _train_total_iters(self, runner) -> int:
        if self.iters is not None:
            return self.iters
        iters_per_epoch = len(runner.train_loop.dataloader)
        if iters_per_epoch < 1:
            raise RuntimeError('TemperatureAnnealingHook: the training '
                               'dataloader is empty')
        return self.epochs * iters_per_epoch

    def _apply(self, runner, value: float) -> None:
        # Imported here so that registering the hook does not import the
        # layers (and their registries) before they are needed.
        from dynconv_mmdet.models.layers import set_temperature
        touched = set_temperature(_unwrap(runner.model), value)
        if touched == 0 and not self._warned_empty:
            self._warned_empty = True
            runner.logger.warning(
                'TemperatureAnnealingHook: the model has no layer with a '
                'temperature (DyConv2d / ODConv2d); the hook does nothing.')

    # hooks ------------------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Remember the progress stored in a loaded checkpoint."""
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) \
            else None
        self._ckpt_meta = meta if isinstance(meta, dict) else {}

    def before_train(self, runner) -> None:
        """Compute the annealing length and set the current temperature."""
        self._total_iters = self._train_total_iters(runner)
        self._apply(runner,
                    self.temperature_at(runner.iter + 1, self._total_iters))

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Set the temperature of the iteration ``runner.iter``."""
        if self._total_iters is None:
            self._total_iters = self._train_total_iters(runner)
        self._apply(runner,
                    self.temperature_at(runner.iter + 1, self._total_iters))

    def _evaluation_temperature(self, runner) -> float:
        if self._total_iters is not None:
            # Inside a training run: the temperature of the last iteration.
            return self.temperature_at(runner.iter, self._total_iters)
        meta = self._ckpt_meta
        if not meta or 'iter' not in meta:
            return self.end
        done_iters = int(meta['iter'])
        if self.iters is not None:
            return self.temperature_at(done_iters, self.iters)
        done_epochs = int(meta.get('epoch', 0))
        if done_epochs > 0:
            # Epoch-based runs save their checkpoints at epoch ends.
            return self.temperature_at(done_epochs, self.epochs)
        if done_iters > 0:
            runner.logger.warning(
                'TemperatureAnnealingHook: cannot tell the annealing '
                'progress of the loaded checkpoint (meta iter='
                f'{done_iters}, epoch=0); evaluating at the final '
                f'temperature {self.end}.')
        return self.end

    def before_val_epoch(self, runner) -> None:
        """Evaluate with the temperature the weights were trained with."""
        self._apply(runner, self._evaluation_temperature(runner))

    def before_test_epoch(self, runner) -> None:
        """Evaluate with the temperature the weights were trained with."""
        self._apply(runner, self._evaluation_temperature(runner))
