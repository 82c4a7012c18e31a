# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Safe checkpoint reading.

Every checkpoint this package reads goes through :func:`safe_torch_load`,
which calls ``torch.load`` with an explicit ``weights_only=True``: only
tensors, plain containers and explicitly allow-listed globals are
unpickled, whatever the environment says (an explicit ``weights_only=True``
wins over ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``; that variable only changes
calls that leave ``weights_only`` unset, such as mmengine's loader).

mmengine 0.10 checkpoints also hold a few numpy and mmengine objects (the
message hub's :class:`~mmengine.logging.HistoryBuffer` with its numpy
arrays). They are allow-listed here, one by one, when the plugin is
imported; safe loading is never switched off.

mmengine pickles a ``HistoryBuffer`` together with its class-level table of
statistics functions, which pickle protocol 2 writes as
``getattr(HistoryBuffer, 'min')``; allow-listing ``builtins.getattr`` would
reopen the door to arbitrary calls. Instead, a ``copyreg`` reducer pickles a
buffer by its data only, ``HistoryBuffer(log_history, count_history,
max_length)``; the statistics functions are class attributes that importing
mmengine (and whoever registered custom ones) restores.

Some releases store one non-tensor object next to their weights (e.g. the
training arguments as an ``argparse.Namespace`` under ``'args'``). A
:class:`NonTensorEntry` names such an entry: its object is read as inert
data (its class is never imported or called) and dropped, or kept as a plain
dict; the same object anywhere else in the file is refused.
"""
import copyreg
import os
import os.path as osp
import pickle
import re
from typing import Any, Dict, List, NamedTuple, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import (get_external_models,
                                        get_torchvision_models)
from torch import Tensor

from .errors import CheckpointError

StateDict = Dict[str, Tensor]


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


class NonTensorEntry(NamedTuple):
    """A top-level checkpoint entry that holds a non-tensor object.

    Attributes:
        key (str): The entry, e.g. ``'args'``.
        globals (tuple[str]): Qualified names of the classes it may hold,
            e.g. ``('argparse.Namespace', )``.
        keep (bool): Keep the entry as plain data (the object's pickled
            state, a dict for an ``argparse.Namespace``) instead of
            dropping it.
    """
    key: str
    globals: Tuple[str, ...]
    keep: bool = False


class _Inert:
    """What an object of a :class:`NonTensorEntry` unpickles to.

    Its pickled state is stored and nothing else happens: the real class is
    neither imported nor called.
    """
    qualified_name = ''

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.state = None
        return obj

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _inert_class(name: str) -> type:
    return type(f'Inert[{name}]', (_Inert, ), {'qualified_name': name})


def _find_inert(obj: Any, where: str, found: List[Tuple[str, str]]) -> None:
    """Collect ``(location, qualified name)`` of every inert object."""
    if isinstance(obj, Tensor):
        return
    if isinstance(obj, _Inert):
        found.append((where, obj.qualified_name))
        _find_inert(obj.state, where, found)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _find_inert(value, f'{where}[{key!r}]', found)
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _find_inert(value, f'{where}[{i}]', found)


def _plain(obj: Any) -> Any:
    """Inert objects replaced by their pickled state, recursively."""
    if isinstance(obj, _Inert):
        return _plain(obj.state)
    if isinstance(obj, dict):
        return {key: _plain(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_plain(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(_plain(value) for value in obj)
    return obj


_BLOCKED = re.compile(r'GLOBAL (\S+) whose module (\S+) is blocked')
_NOT_ALLOWED = re.compile(r'GLOBAL (\S+) was not an allowed global')
_OBJECT_OPS = ('Can only build', 'Can only create new object',
               'Trying to call reduce')


def _refusal(path: str, err: pickle.UnpicklingError) -> CheckpointError:
    """The error for a file that safe loading does not read."""
    text = str(err)
    advice = (' Safe loading (weights_only=True) unpickles only tensors, '
              'plain containers and allow-listed types; it is never switched '
              'off. If you trust the file, re-save only its tensors from a '
              'trusted environment, e.g. torch.save({"state_dict": '
              'ckpt["state_dict"]}, new_path).')
    blocked = _BLOCKED.search(text)
    if blocked:
        return CheckpointError(
            f'refusing to load {path}: unpickling it would call '
            f'{blocked.group(1)} from the module {blocked.group(2)}, which '
            'can run arbitrary commands; this file may be malicious.' + advice)
    unsafe = _NOT_ALLOWED.search(text)
    if unsafe:
        return CheckpointError(
            f'refusing to load {path}: it needs the arbitrary Python object '
            f'{unsafe.group(1)} unpickled, which could run any code.' + advice)
    detail = text.split('WeightsUnpickler error:')[-1].strip()
    detail = next(
        (line.strip() for line in detail.splitlines() if line.strip()),
        text.splitlines()[0])
    if any(op in text for op in _OBJECT_OPS):
        return CheckpointError(
            f'refusing to load {path}: it builds Python objects that safe '
            f'loading does not allow ({detail}).' + advice)
    return CheckpointError(
        f'{path} is not a PyTorch checkpoint (it does not unpickle as one: '
        f'{detail})')


def safe_torch_load(
    path: str,
    map_location: Union[str, torch.device] = 'cpu',
    entries: Sequence[NonTensorEntry] = ()
) -> Dict[str, Any]:
    """Load a local checkpoint with ``weights_only=True``.

    Args:
        path (str): A local file.
        map_location (str | torch.device): Where tensors go. Default: CPU.
        entries (Sequence[NonTensorEntry]): Top-level entries allowed to
            hold the named non-tensor objects (read as inert data, then
            dropped or kept as plain data).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If the file is not a PyTorch checkpoint, needs
            arbitrary objects unpickled ("refusing to load ..."), holds an
            entry's object elsewhere than in that entry, or is not a dict.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    inert = [(_inert_class(name), name) for entry in entries
             for name in entry.globals]
    try:
        with torch.serialization.safe_globals(inert):
            ckpt = torch.load(
                path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise _refusal(path, err) from err
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        raise CheckpointError(
            f'{path} is not a PyTorch checkpoint ({type(err).__name__}: '
            f'{str(err).splitlines()[0] if str(err) else err!r})') from err
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{path} holds a {type(ckpt).__name__}, not a '
                              'dict of tensors or a checkpoint dict')
    if inert:
        _settle_entries(path, ckpt, entries)
    return ckpt


def _settle_entries(path: str, ckpt: dict,
                    entries: Sequence[NonTensorEntry]) -> None:
    """Refuse inert objects outside their entries; drop or keep entries."""
    allowed = {entry.key: set(entry.globals) for entry in entries}
    for top, value in ckpt.items():
        found: List[Tuple[str, str]] = []
        _find_inert(value, f'[{top!r}]', found)
        for where, name in found:
            if name not in allowed.get(top, ()):
                homes = ', '.join(
                    repr(k) for k, names in allowed.items() if name in names)
                raise CheckpointError(
                    f'refusing to load {path}: it holds a {name} object at '
                    f'checkpoint{where}; safe loading reads {name} only as '
                    f'the entry {homes}')
    for entry in entries:
        if entry.key not in ckpt:
            continue
        if entry.keep:
            ckpt[entry.key] = _plain(ckpt[entry.key])
        else:
            del ckpt[entry.key]


def resolve_checkpoint_path(checkpoint: str) -> str:
    """Local path for ``checkpoint`` (downloads URLs into torch's hub cache).

    Accepts a local path, ``http(s)://``, ``torchvision://NAME`` and
    ``open-mmlab://NAME``.
    """
    if checkpoint.startswith('torchvision://'):
        name = checkpoint[len('torchvision://'):]
        checkpoint = get_torchvision_models()[name]
    elif checkpoint.startswith('open-mmlab://'):
        name = checkpoint[len('open-mmlab://'):]
        checkpoint = get_external_models()[name]
    if checkpoint.startswith(('http://', 'https://')):
        cache = osp.join(torch.hub.get_dir(), 'checkpoints')
        os.makedirs(cache, exist_ok=True)
        local = osp.join(cache, osp.basename(checkpoint.split('?')[0]))
        if not osp.isfile(local):
            torch.hub.download_url_to_file(checkpoint, local)
        return local
    return checkpoint


def read_checkpoint(
    checkpoint: str,
    map_location: Union[str, torch.device] = 'cpu',
    entries: Sequence[NonTensorEntry] = ()
) -> Dict[str, Any]:
    """:func:`resolve_checkpoint_path`, then :func:`safe_torch_load`."""
    return safe_torch_load(
        resolve_checkpoint_path(checkpoint), map_location, entries)


def extract_state_dict(ckpt: dict, source: str) -> StateDict:
    """The weights of a checkpoint dict (``state_dict``/``model`` or flat)."""
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
            break
    if not ckpt or not all(isinstance(v, Tensor) for v in ckpt.values()):
        raise CheckpointError(
            f'{source} holds no state_dict of tensors (looked for '
            "'state_dict', 'model' or a flat dict of tensors)")
    return ckpt
