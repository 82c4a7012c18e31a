"""Hooks registered in mmengine's root ``HOOKS`` registry."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .check_finite_loss_hook import CheckFiniteLossHook
from .check_finite_predictions_hook import CheckFinitePredictionsHook
from .errors import (CheckpointSaveError, NonFiniteError,
                     NonFinitePredictionError, TrainingAborted)
from .temperature_annealing_hook import TemperatureAnnealingHook

__all__ = [
    'AtomicCheckpointHook', 'CheckFiniteLossHook',
    'CheckFinitePredictionsHook', 'CheckpointSaveError', 'NonFiniteError',
    'NonFinitePredictionError', 'TemperatureAnnealingHook', 'TrainingAborted'
]
