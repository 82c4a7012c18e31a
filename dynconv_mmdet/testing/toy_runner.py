# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""A tiny mmengine ``Runner`` (a linear model on random vectors) to test
hooks and resumption in a fraction of a second, without mmdet."""
import itertools
import uuid
from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.model import BaseModel
from mmengine.runner import Runner


class ToyModel(BaseModel):
    """``y = W x + b`` with a squared-error loss.

    Args:
        nan_at (int, optional): 1-based count of the training forward pass
            whose loss is multiplied by NaN (a diverging run). Defaults to
            None.
        split_loss (bool): Return the loss as ``loss_fit`` plus a
            ``loss_reg`` term (which carries the NaN) instead of one
            ``loss``, as detectors return several losses.
    """

    def __init__(self,
                 nan_at: Optional[int] = None,
                 split_loss: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.nan_at = nan_at
        self.split_loss = split_loss
        self.loss_calls = 0

    def forward(self,
                inputs: torch.Tensor,
                labels: Optional[torch.Tensor] = None,
                mode: str = 'tensor') -> Any:
        out = self.linear(inputs)
        if mode == 'tensor':
            return out
        if mode == 'predict':
            return [dict(pred=p, label=t) for p, t in zip(out, labels)]
        self.loss_calls += 1
        fit = ((out - labels)**2).mean()
        reg = 1e-3 * self.linear.weight.abs().sum()
        if self.loss_calls == self.nan_at:
            reg = reg * float('nan')
        if self.split_loss:
            return dict(loss_fit=fit, loss_reg=reg)
        return dict(loss=fit + reg)


class SequenceMetric(BaseMetric):
    """Reports ``score`` values from a fixed sequence, one per evaluation
    (to drive ``save_best``)."""

    default_prefix = None

    def __init__(self, scores: Sequence[float]) -> None:
        super().__init__()
        self._scores = itertools.chain(scores, itertools.repeat(scores[-1]))

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        self.results.append(len(data_samples))

    def compute_metrics(self, results: List[Any]) -> Dict[str, float]:
        return dict(score=float(next(self._scores)))


def toy_dataset(num: int = 8, seed: int = 0) -> List[dict]:
    gen = torch.Generator().manual_seed(seed)
    return [
        dict(
            inputs=torch.rand(2, generator=gen),
            labels=torch.rand(1, generator=gen)) for _ in range(num)
    ]


def _loader(batch_size: int = 2, infinite: bool = True) -> dict:
    sampler = 'InfiniteSampler' if infinite else 'DefaultSampler'
    return dict(
        dataset=toy_dataset(),
        sampler=dict(type=sampler, shuffle=False),
        batch_size=batch_size,
        num_workers=0,
        collate_fn=dict(type='default_collate'))


def toy_runner(work_dir: str,
               max_iters: int = 6,
               checkpoint: Optional[dict] = None,
               custom_hooks: Optional[List[dict]] = None,
               model: Optional[nn.Module] = None,
               val_scores: Optional[Sequence[float]] = None,
               val_interval: int = 2,
               lr: float = 0.1,
               resume_from: Optional[str] = None,
               **default_hooks: dict) -> Runner:
    """An iteration-based mmengine ``Runner`` of :class:`ToyModel`.

    Args:
        work_dir (str): The work directory.
        max_iters (int): Training iterations. Defaults to 6.
        checkpoint (dict, optional): ``default_hooks.checkpoint``. Defaults
            to ``AtomicCheckpointHook`` every 2 iterations.
        custom_hooks (list[dict], optional): Extra hooks.
        model (nn.Module, optional): Defaults to ``ToyModel()``.
        val_scores (Sequence[float], optional): If given, validate every
            ``val_interval`` iterations with :class:`SequenceMetric`.
        lr (float): SGD learning rate.
        resume_from (str, optional): Resume from this checkpoint.
        **default_hooks: Further ``default_hooks`` entries.
    """
    checkpoint = checkpoint or dict(
        type='AtomicCheckpointHook', interval=2, by_epoch=False)
    val = {}
    if val_scores is not None:
        val = dict(
            val_dataloader=_loader(infinite=False),
            val_cfg=dict(),
            val_evaluator=Evaluator([SequenceMetric(val_scores)]))
    return Runner(
        model=model if model is not None else ToyModel(),
        work_dir=work_dir,
        train_dataloader=_loader(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr, momentum=0.9)),
        param_scheduler=dict(
            type='MultiStepLR', by_epoch=False, milestones=[max_iters // 2]),
        train_cfg=dict(
            by_epoch=False, max_iters=max_iters, val_interval=val_interval),
        default_hooks=dict(
            checkpoint=checkpoint,
            logger=dict(type='LoggerHook', interval=1),
            **default_hooks),
        custom_hooks=custom_hooks,
        resume=resume_from is not None,
        load_from=resume_from,
        experiment_name=f'toy_{uuid.uuid4().hex[:12]}',
        **val)
