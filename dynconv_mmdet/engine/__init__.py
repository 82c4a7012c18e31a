"""Training-time helpers (hooks) of dynconv-mmdet."""
from .hooks import (AtomicCheckpointHook, CheckFiniteLossHook,
                    CheckpointSaveError, NonFiniteError,
                    TemperatureAnnealingHook, TrainingAborted)
from .resume import find_resume_checkpoint
from .runner import SafeLoadRunner

__all__ = [
    'AtomicCheckpointHook', 'CheckFiniteLossHook', 'CheckpointSaveError',
    'NonFiniteError', 'TemperatureAnnealingHook', 'TrainingAborted',
    'find_resume_checkpoint', 'SafeLoadRunner'
]
