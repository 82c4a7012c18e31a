"""Hooks registered in mmengine's root ``HOOKS`` registry."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .check_finite_loss_hook import CheckFiniteLossHook
from .errors import CheckpointSaveError, NonFiniteError, TrainingAborted
from .temperature_annealing_hook import TemperatureAnnealingHook

__all__ = [
    'AtomicCheckpointHook', 'CheckFiniteLossHook', 'CheckpointSaveError',
    'NonFiniteError', 'TemperatureAnnealingHook', 'TrainingAborted'
]
