# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Refuse to evaluate predictions that are NaN or infinite.

Non-maximum suppression and score thresholds silently drop boxes whose
scores or coordinates are NaN: a checkpoint whose box regression is NaN
still "scores" an AP (70.1 in the run that found it, where the real weights
score 62.7) and ``tools/test.py`` exits 0. :class:`CheckFinitePredictionsHook`
looks at the raw outputs of the detector's heads (RPN and one-stage dense
heads, RoI box and mask heads: class scores and box regressions before any
decoding, thresholding or NMS) at every validation and test iteration, and
stops after the last one, before the evaluator computes anything, with a
:class:`~.errors.NonFinitePredictionError` that names the count per head.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type

import torch
import torch.nn as nn
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch.utils.hooks import RemovableHandle

from .errors import NonFinitePredictionError

DATA_BATCH = Optional[Any]


def default_head_types() -> Tuple[Type[nn.Module], ...]:
    """mmdet's head classes whose outputs are the raw predictions."""
    from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
    from mmdet.models.roi_heads.bbox_heads import BBoxHead
    from mmdet.models.roi_heads.mask_heads import FCNMaskHead
    return BaseDenseHead, BBoxHead, FCNMaskHead


def count_non_finite(output: Any) -> Tuple[int, int]:
    """``(non-finite, total)`` floating-point elements in a head's output
    (tensors in nested tuples, lists and dicts)."""
    if torch.is_tensor(output):
        if not output.is_floating_point():
            return 0, 0
        return int((~torch.isfinite(output)).sum()), output.numel()
    values: Sequence[Any] = ()
    if isinstance(output, dict):
        values = list(output.values())
    elif isinstance(output, (list, tuple)):
        values = output
    bad = total = 0
    for value in values:
        b, t = count_non_finite(value)
        bad, total = bad + b, total + t
    return bad, total


@HOOKS.register_module()
class CheckFinitePredictionsHook(Hook):
    """Stop validation / testing whose raw predictions are not finite.

    Args:
        head_types (Sequence[type], optional): The module classes whose
            forward outputs are checked. Default: mmdet's dense heads (RPN,
            RTMDet, YOLOX, ...), RoI box heads and mask heads.

    Raises (after the last validation / test iteration, before evaluating):
        NonFinitePredictionError: Naming, per head, how many of its raw
            outputs were NaN or infinite, over how many images.
    """

    priority = 'VERY_HIGH'

    def __init__(
            self,
            head_types: Optional[Sequence[Type[nn.Module]]] = None) -> None:
        self.head_types = tuple(head_types) if head_types else None
        self._handles: List[RemovableHandle] = []
        self._counts: Dict[str, List[int]] = {}
        self._images = 0

    # -- attaching ---------------------------------------------------------
    def _attach(self, runner) -> None:
        self._detach()
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        types = self.head_types or default_head_types()
        self._counts, self._images = {}, 0
        for name, module in model.named_modules():
            if isinstance(module, types):
                self._counts[name] = [0, 0]
                self._handles.append(
                    module.register_forward_hook(self._recorder(name)))

    def _recorder(self, name: str):

        def record(module: nn.Module, args: Any, output: Any) -> None:
            bad, total = count_non_finite(output)
            self._counts[name][0] += bad
            self._counts[name][1] += total

        return record

    def _detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # -- checking ----------------------------------------------------------
    def _check(self, runner, batch_idx: int, data_batch: DATA_BATCH,
               num_batches: int, phase: str) -> None:
        if isinstance(data_batch, dict):
            self._images += len(data_batch.get('inputs', ()))
        if batch_idx + 1 < num_batches:
            return
        self._detach()
        names = sorted(self._counts)
        totals = torch.tensor(
            [self._counts[n] for n in names] + [[self._images, 0]],
            dtype=torch.float64).reshape(-1, 2)
        all_reduce(totals)
        images = int(totals[-1, 0])
        bad = [(name, int(b), int(t))
               for name, (b, t) in zip(names, totals[:-1].tolist()) if b]
        if bad:
            heads = '; '.join(f'{name}: {b} of {t}' for name, b, t in bad)
            raise NonFinitePredictionError(
                f'the {phase} stopped before evaluating: the raw predictions '
                f'(scores and box regressions before NMS, which drops NaN '
                f'silently) of {images} image(s) hold '
                f'{sum(b for _, b, _ in bad)} NaN or infinite values '
                f'({heads}). The weights are broken (a diverged run or a '
                'damaged checkpoint) and any AP computed from them would be '
                'meaningless: evaluate a checkpoint saved before the run '
                'diverged, or train again with a lower learning rate or '
                'gradient clipping.')

    def before_val_epoch(self, runner) -> None:
        """Watch the heads during validation."""
        self._attach(runner)

    def before_test_epoch(self, runner) -> None:
        """Watch the heads during testing."""
        self._attach(runner)

    def after_val_iter(self,
                       runner,
                       batch_idx: int,
                       data_batch: DATA_BATCH = None,
                       outputs: Optional[Sequence] = None) -> None:
        """Count; after the last iteration, refuse non-finite outputs."""
        self._check(runner, batch_idx, data_batch, len(runner.val_dataloader),
                    'validation')

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: DATA_BATCH = None,
                        outputs: Optional[Sequence] = None) -> None:
        """Count; after the last iteration, refuse non-finite outputs."""
        self._check(runner, batch_idx, data_batch, len(runner.test_dataloader),
                    'test')
