# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Backbone mix-in that takes over a ``Pretrained`` ``init_cfg``.

The models do not import :mod:`dynconv_mmdet.checkpoint` (it imports them):
the loader is registered here by :mod:`dynconv_mmdet.checkpoint.backbone`
(:func:`register_pretrained_loader`), which ``import dynconv_mmdet`` always
imports.
"""
import copy
from typing import Any, Callable, Optional, Union

#: ``(backbone, checkpoint, arch, prefix, strict) -> report``: loads a
#: ``Pretrained`` checkpoint into a backbone.
PretrainedLoader = Callable[[Any, str, str, Optional[str], bool], Any]

_LOADER: Optional[PretrainedLoader] = None


def register_pretrained_loader(loader: PretrainedLoader) -> PretrainedLoader:
    """Set the function that loads a ``Pretrained`` ``init_cfg`` (the last
    one registered is used)."""
    global _LOADER
    _LOADER = loader
    return loader


def pretrained_loader() -> PretrainedLoader:
    """The registered loader.

    Raises:
        RuntimeError: None is registered (``dynconv_mmdet.checkpoint`` was
            not imported).
    """
    if _LOADER is None:
        raise RuntimeError(
            'no Pretrained loader is registered: import dynconv_mmdet (or '
            'dynconv_mmdet.checkpoint), which registers the strict one')
    return _LOADER


class PretrainedLoaderMixin:
    """Loads a ``Pretrained`` ``init_cfg`` with the registered loader,
    :func:`dynconv_mmdet.checkpoint.load_pretrained` (strict, safe).

    Subclasses call :meth:`_split_init_cfg` before ``super().__init__`` and
    set ``pretrained_arch``. The default initialisation runs first, so the
    parts a dense checkpoint does not cover (attention) keep their own init.
    """

    pretrained_arch: str = ''
    #: The model holding this backbone (detector, classifier) refuses a
    #: state dict that does not fit it, whatever loads it
    #: (:mod:`dynconv_mmdet.checkpoint.guard`).
    guards_parent_load: bool = True

    def _split_init_cfg(
            self,
            init_cfg: Optional[Union[dict, list]],
            strict_pretrained: bool,
            pretrained: Optional[str] = None) -> Optional[Union[dict, list]]:
        """Keep the ``Pretrained`` part for ourselves, return the rest.

        mmdet's ``pretrained=P`` means ``init_cfg=dict(type='Pretrained',
        checkpoint=P)``; it takes the same strict path.
        """
        self.strict_pretrained = strict_pretrained
        self._pretrained_cfg = None
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError(
                    f'{type(self).__name__}: give either `pretrained` or '
                    '`init_cfg`, not both (pretrained=P means '
                    "init_cfg=dict(type='Pretrained', checkpoint=P))")
            if not isinstance(pretrained, str):
                raise TypeError(
                    f'{type(self).__name__}: `pretrained` must be a '
                    f'checkpoint path or URL, got {type(pretrained).__name__}')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        cfgs = init_cfg if isinstance(init_cfg, list) else [init_cfg]
        rest = []
        for cfg in cfgs:
            if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
                if self._pretrained_cfg is not None:
                    raise ValueError('only one Pretrained init_cfg allowed')
                unknown = set(cfg) - {
                    'type', 'checkpoint', 'prefix', 'map_location'
                }
                if unknown or 'checkpoint' not in cfg:
                    raise ValueError(
                        'Pretrained init_cfg takes `checkpoint` and an '
                        f'optional `prefix`; got {sorted(cfg)}')
                self._pretrained_cfg = copy.deepcopy(cfg)
            elif cfg is not None:
                rest.append(cfg)
        if not rest:
            return None
        return rest if isinstance(init_cfg, list) else rest[0]

    def init_weights(self) -> None:
        """Default init, then the pretrained weights if configured."""
        super().init_weights()
        if self._pretrained_cfg is not None:
            pretrained_loader()(self, self._pretrained_cfg['checkpoint'],
                                self.pretrained_arch,
                                self._pretrained_cfg.get('prefix'),
                                self.strict_pretrained)
