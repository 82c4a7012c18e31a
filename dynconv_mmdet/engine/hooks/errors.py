# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Errors that stop a training run on purpose.

The hooks of this package raise them with a message that says what
happened, what was kept on disk and what to do next; ``tools/train.py``
turns them into ``error: <message>`` and a non-zero exit status.
"""


class TrainingAborted(RuntimeError):
    """Training was stopped by a hook; the message says why and what to
    do."""


class CheckpointSaveError(TrainingAborted):
    """A checkpoint could not be written (full disk, permissions, ...)."""


class NonFiniteError(TrainingAborted):
    """The loss or the weights stopped being finite (NaN or infinity)."""


class NonFinitePredictionError(NonFiniteError):
    """A model's raw predictions (before NMS) hold NaN or infinity."""
