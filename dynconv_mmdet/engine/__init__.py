"""Training-time helpers (hooks) of dynconv-mmdet."""
from .hooks import (AtomicCheckpointHook, CheckFiniteLossHook,
                    CheckpointSaveError, NonFiniteError,
                    TemperatureAnnealingHook, TrainingAborted)
from .resume import find_resume_checkpoint
from .runner import SafeLoadRunner
from .work_dir_lock import (WorkDirLock, WorkDirLocked, WorkDirLockError,
                            acquire_work_dir_lock)

__all__ = [
    'AtomicCheckpointHook', 'CheckFiniteLossHook', 'CheckpointSaveError',
    'NonFiniteError', 'TemperatureAnnealingHook', 'TrainingAborted',
    'find_resume_checkpoint', 'SafeLoadRunner', 'WorkDirLock', 'WorkDirLocked',
    'WorkDirLockError', 'acquire_work_dir_lock'
]
