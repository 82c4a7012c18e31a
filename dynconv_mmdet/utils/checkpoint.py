"""Safe checkpoint loading.

PyTorch loads checkpoints with ``weights_only=True``: only tensors, plain
containers and explicitly allow-listed globals are unpickled. mmengine 0.10
checkpoints also hold a few numpy and mmengine objects (the message hub's
:class:`~mmengine.logging.HistoryBuffer` with its numpy arrays). They are
allow-listed here, one by one, when the plugin is imported; safe loading is
never switched off.

mmengine pickles a ``HistoryBuffer`` together with its class-level table of
statistics functions, which pickle protocol 2 writes as
``getattr(HistoryBuffer, 'min')``; allow-listing ``builtins.getattr`` would
reopen the door to arbitrary calls. Instead, a ``copyreg`` reducer pickles a
buffer by its data only, ``HistoryBuffer(log_history, count_history,
max_length)``; the statistics functions are class attributes that importing
mmengine (and whoever registered custom ones) restores.
"""
import copyreg
import os.path as osp
import pickle
from typing import Any, Dict, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


class CheckpointError(RuntimeError):
    """A file that cannot be used as a checkpoint."""


def _numpy_globals() -> List[Any]:
    multiarray = getattr(np, '_core', None)
    multiarray = (
        multiarray.multiarray
        if multiarray is not None else np.core.multiarray)
    dtype_classes = [
        type(np.dtype(name))
        for name in ('float64', 'float32', 'float16', 'int64', 'int32', 'bool')
    ]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype
            ] + dtype_classes


def mmengine_checkpoint_globals() -> List[Any]:
    """The non-tensor globals that mmengine runner checkpoints contain."""
    return [HistoryBuffer] + _numpy_globals()


def _reduce_history_buffer(buffer: HistoryBuffer) -> tuple:
    return HistoryBuffer, (buffer._log_history, buffer._count_history,
                           buffer.max_length)


def register_safe_globals() -> None:
    """Make mmengine checkpoints load with ``weights_only=True``.

    Allow-lists :func:`mmengine_checkpoint_globals` and registers the
    data-only pickling of ``HistoryBuffer`` (see the module doc).
    """
    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())


def safe_torch_load(path: str) -> Dict[str, Any]:
    """Load a local checkpoint with ``weights_only=True`` onto the CPU.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If the file is not a PyTorch checkpoint, needs
            arbitrary objects unpickled, or does not hold a dict.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        if 'Unsupported global' not in str(err):
            raise CheckpointError(
                f'{path} is not a PyTorch checkpoint (it does not unpickle '
                'as one)') from err
        raise CheckpointError(
            f'refusing to load {path}: it needs arbitrary Python objects '
            'unpickled, which safe loading (weights_only=True) does not '
            'allow. Re-save only its tensors, e.g. '
            "torch.save({'state_dict': ckpt['state_dict']}, new_path), from "
            'a trusted environment.\nDetails: ' +
            str(err).splitlines()[0]) from err
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        raise CheckpointError(
            f'{path} is not a PyTorch checkpoint ({type(err).__name__}: '
            f'{err})') from err
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{path} holds a {type(ckpt).__name__}, not a '
                              'dict of tensors or a checkpoint dict')
    return ckpt
