# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Errors of checkpoint reading and loading."""


class CheckpointError(RuntimeError):
    """A file that cannot be used as a checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint whose keys or shapes do not fit the model."""
