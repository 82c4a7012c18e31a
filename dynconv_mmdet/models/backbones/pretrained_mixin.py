"""Backbone mix-in that takes over a ``Pretrained`` ``init_cfg``."""
import copy
from typing import Optional, Union

from .pretrained import load_pretrained


class PretrainedLoaderMixin:
    """Loads a ``Pretrained`` ``init_cfg`` with :func:`load_pretrained`.

    Subclasses call :meth:`_split_init_cfg` before ``super().__init__`` and
    set ``pretrained_arch``. The default initialisation runs first, so the
    parts a dense checkpoint does not cover (attention) keep their own init.
    """

    pretrained_arch: str = ''

    def _split_init_cfg(
            self, init_cfg: Optional[Union[dict, list]],
            strict_pretrained: bool) -> Optional[Union[dict, list]]:
        """Keep the ``Pretrained`` part for ourselves, return the rest."""
        self.strict_pretrained = strict_pretrained
        self._pretrained_cfg = None
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
            load_pretrained(
                self,
                self._pretrained_cfg['checkpoint'],
                arch=self.pretrained_arch,
                prefix=self._pretrained_cfg.get('prefix'),
                strict=self.strict_pretrained)
