# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Stop training as soon as the loss is NaN or infinite.

A diverged run otherwise trains on, saves checkpoints of NaN weights over
its last good ones and exits 0. mmdet's ``CheckInvalidLossHook`` looks every
50 iterations only, after those checkpoints may have been written, and fails
with a bare ``assert``.

:class:`CheckFiniteLossHook` looks at every iteration, at the total loss the
model already returned (``outputs['loss']`` of ``after_train_iter``, which
mmengine's ``RuntimeInfoHook`` has already copied to the host for logging,
so the check adds no device synchronisation). Its priority (``VERY_HIGH``)
puts it before every hook that could save or log the diverged state (EMA,
logger, checkpoint). It stops training with :class:`NonFiniteError`, whose
message names the iteration and the losses that are not finite; the
checkpoints already on disk are left as they are.
"""
import math
from typing import Any, Dict, Optional, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from .errors import NonFiniteError

DATA_BATCH = Optional[Union[dict, tuple, list]]


def _is_finite(value: Any) -> bool:
    if torch.is_tensor(value):
        if value.numel() == 1:  # RuntimeInfoHook has synchronised already
            return math.isfinite(value.item())
        return bool(torch.isfinite(value).all())
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True  # not a number: nothing to check


def _describe(value: Any) -> str:
    if torch.is_tensor(value):
        if value.numel() == 1:
            return str(value.item())
        return f'a tensor of shape {tuple(value.shape)}'
    return str(value)


@HOOKS.register_module()
class CheckFiniteLossHook(Hook):
    """Stop training when the loss of an iteration is not finite.

    Args:
        key (str): Entry of the model's training outputs that holds the total
            loss (the sum of every ``loss*`` entry in mmengine's
            ``parse_losses``). Defaults to ``'loss'``.

    Raises (during training):
        NonFiniteError: At the first iteration whose loss is NaN or infinite.
    """

    priority = 'VERY_HIGH'

    def __init__(self, key: str = 'loss') -> None:
        self.key = key

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[Dict[str, Any]] = None) -> None:
        """Check ``outputs[key]``; raise :class:`NonFiniteError` if it is not
        finite."""
        if not outputs or self.key not in outputs:
            return
        if _is_finite(outputs[self.key]):
            return
        message = self.message(runner, outputs)
        runner.logger.error(message)
        raise NonFiniteError(message)

    def message(self, runner, outputs: Dict[str, Any]) -> str:
        """The error message: where, which losses, what was kept, what to
        do."""
        bad: Sequence[str] = [
            f'{name}={_describe(value)}' for name, value in outputs.items()
            if 'loss' in name and name != self.key and not _is_finite(value)
        ]
        which = (f' (not finite: {", ".join(bad)})' if bad else '')
        last = runner.message_hub.get_info('last_ckpt')
        kept = (f'The last checkpoint, {last}, was written before the loss '
                'diverged and is kept.'
                if last else 'No checkpoint was written in this run.')
        return (
            f'training stopped at iteration {runner.iter + 1} (epoch '
            f'{runner.epoch + 1}): the loss is not finite, '
            f'{self.key}={_describe(outputs[self.key])}{which}. No checkpoint '
            f'of these weights was written. {kept} The training diverged: '
            'lower the learning rate (optim_wrapper.optimizer.lr), clip the '
            'gradients (optim_wrapper.clip_grad=dict(max_norm=...)) or '
            'lengthen the warm-up, then resume from the last checkpoint '
            '(`python tools/train.py CONFIG --resume`) or start anew.')
