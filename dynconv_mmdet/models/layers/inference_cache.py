"""The inference cache of the dynamic layers.

Values a layer derives once from its parameters for the eval-mode path
without autograd (e.g. ODConv's attention with its BatchNorm folded into the
trunk and its heads packed), rebuilt when what they were derived from
changes. :class:`InferenceCacheMixin` gives
:class:`~.base.DynamicConv2d` its :meth:`~InferenceCacheMixin.inference_cache`
and drops the cache on ``train()`` / ``eval()``, ``.to()`` / ``.half()`` /
any ``_apply``, ``load_state_dict``, ``copy.deepcopy`` and pickling.
"""
import operator
from typing import Any, Callable, Hashable, List, Optional

import torch
import torch.nn as nn
from torch import Tensor


def _state_tensors(module: nn.Module) -> List[Optional[Tensor]]:
    """The parameters and buffers (``None`` included) of ``module`` and of
    its descendants, read from the module dicts (cheaper than
    ``named_parameters``, which runs on every inference call)."""
    tensors: List[Optional[Tensor]] = []
    stack = [module]
    while stack:
        m = stack.pop()
        if m is None:
            continue
        tensors.extend(m._parameters.values())
        tensors.extend(m._buffers.values())
        stack.extend(m._modules.values())
    return tensors


def _versions(tensors: List[Optional[Tensor]]) -> Optional[List[int]]:
    """Version counters (-1 for ``None``); ``None`` when a tensor has none
    (an inference tensor, made under ``torch.inference_mode``: nothing is
    cached then)."""
    try:
        return [-1 if t is None else t._version for t in tensors]
    except RuntimeError:
        return None


class _InferenceCache:
    """What :meth:`InferenceCacheMixin.inference_cache` keeps: the values,
    and what they were derived from (the tensors themselves are held, so
    their identities stay unique while cached)."""

    __slots__ = ('source', 'key', 'tensors', 'versions', 'values')

    def __init__(self, source: nn.Module, key: Hashable,
                 tensors: List[Optional[Tensor]], versions: List[int],
                 values: Any) -> None:
        self.source = source
        self.key = key
        self.tensors = tensors
        self.versions = versions
        self.values = values


class InferenceCacheMixin:
    """One cache of values derived from a module's state, for an
    ``nn.Module`` (the mixin comes before ``nn.Module`` in the bases)."""

    def inference_cache(self,
                        source: nn.Module,
                        build: Callable[[], Any],
                        key: Hashable = None) -> Any:
        """Values derived from the state of ``source``, built once.

        ``build()`` runs without autograd when nothing is cached yet, when
        ``key`` (e.g. the temperature) differs from the cached one, when a
        parameter or buffer of ``source`` or of its descendants is another
        tensor (a replaced module, e.g. a SyncBN conversion, or
        ``load_state_dict(..., assign=True)``) or moved its version counter
        (an optimizer step, ``load_state_dict``, any in-place update
        autograd sees). The module doc lists what else drops the cache. One
        cache per layer: the last ``source`` / ``build`` wins.

        Args:
            source (nn.Module): The module the values derive from (e.g. the
                attention); its parameters and buffers are watched.
            build (callable): Returns the values.
            key (hashable): Anything else the values depend on.
        """
        cache = self.__dict__.get('_inference_cache')
        tensors = _state_tensors(source)
        versions = _versions(tensors)
        if (cache is not None and cache.source is source and cache.key == key
                and len(tensors) == len(cache.tensors)
                and all(map(operator.is_, tensors, cache.tensors))
                and versions == cache.versions):
            return cache.values
        with torch.no_grad():
            values = build()
        if versions is not None:
            self.__dict__['_inference_cache'] = _InferenceCache(
                source, key, tensors, versions, values)
        return values

    def clear_inference_cache(self) -> None:
        """Drop the values cached by :meth:`inference_cache`."""
        self.__dict__.pop('_inference_cache', None)

    def train(self, mode: bool = True):
        """``nn.Module.train``; also drops the inference cache (so that
        ``eval()`` after a swap of parameters through ``.data``, as
        mmengine's ``EMAHook`` does, sees the new values)."""
        self.clear_inference_cache()
        return super().train(mode)

    def _apply(self, fn, recurse=True):
        # .to(), .cuda(), .half(), ...: cached values would keep the old
        # device and dtype
        self.clear_inference_cache()
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        # load_state_dict(..., assign=True) replaces the tensors themselves
        self.clear_inference_cache()
        super()._load_from_state_dict(*args, **kwargs)

    def __getstate__(self) -> dict:
        # copy.deepcopy (e.g. an EMA model) and pickling start without it
        state = self.__dict__.copy()
        state.pop('_inference_cache', None)
        return state


def clear_inference_caches(module: nn.Module) -> int:
    """Drop the inference cache of every dynamic conv inside ``module``.

    Needed only after writes the version counters do not see (through
    ``param.data``) when ``module.eval()`` is not called afterwards.

    Returns:
        int: The number of dynamic convs visited.
    """
    convs = [m for m in module.modules() if isinstance(m, InferenceCacheMixin)]
    for conv in convs:
        conv.clear_inference_cache()
    return len(convs)
