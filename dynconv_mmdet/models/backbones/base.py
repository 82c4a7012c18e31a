"""What every dynamic backbone shares: presets, placement and freezing.

A dynamic backbone is an mmdet backbone whose convs are replaced after it is
built, following a *layout* (which conv type, which convs) that a preset of
the backbone's own table gives, optionally overridden by ``dynamic=``.
"""
import fnmatch
from typing import ClassVar, Dict, Iterator, List, Optional, Tuple

import torch.nn as nn

from ..layers import (DynamicConv2d, finalize_dynamic_convs,
                      freeze_dynamic_convs, set_temperature)
from .layout import make_dynamic, resolve_layout
from .pretrained_mixin import PretrainedLoaderMixin

#: ``(parent module, attribute name)`` of a conv a layout makes dynamic.
Site = Tuple[nn.Module, str]

#: Arguments of our own, keyword-only in every dynamic backbone.
OWN_ARGUMENTS = ('preset', 'dynamic', 'temperature', 'strict_pretrained',
                 'freeze_shared_state')


class DynamicBackboneMixin(PretrainedLoaderMixin):
    """Places dynamic convs in an mmdet backbone after it is built.

    Subclasses set :attr:`presets` (their preset table) and
    :attr:`layout_defaults` (every layout field with its static value),
    implement :meth:`_dynamic_sites` and call :meth:`_check_positional`
    and :meth:`_split_init_cfg` before, and :meth:`_place_dynamic_convs`
    after, the mmdet constructor.
    """

    #: Preset name -> layout overrides (``None``: static).
    presets: ClassVar[Dict[str, Optional[dict]]] = {}
    #: Every layout field with its static default.
    layout_defaults: ClassVar[dict] = {}

    @classmethod
    def _check_positional(cls, args: tuple) -> None:
        """Positional arguments belong to the mmdet backbone; ours are
        keyword-only. A string among them is a preset given by position."""
        mmdet_cls = next(
            c for c in cls.__mro__ if issubclass(c, nn.Module)
            and not issubclass(c, DynamicBackboneMixin))
        for value in args:
            if isinstance(value, (str, dict)):
                raise TypeError(
                    f'{cls.__name__}: positional arguments go to mmdet\'s '
                    f'{mmdet_cls.__name__} in its order; '
                    f'{", ".join(OWN_ARGUMENTS)} are keyword-only (e.g. '
                    f'{cls.__name__}(..., preset={value!r})).')

    def _dynamic_sites(self, layout: dict) -> Iterator[Tuple[nn.Module, str]]:
        """``(parent, attribute)`` of every conv the layout makes dynamic."""
        raise NotImplementedError

    def _layout_variant(self) -> Optional[str]:
        """Which ``variants`` entry of a layout applies to this backbone
        (see :func:`.layout.resolve_layout`); default: none."""
        return None

    def _unless_static(self, sites: List[Site]) -> Iterator[Site]:
        """The sites whose module path (relative to the backbone) matches
        no ``fnmatch`` pattern of the layout's ``static`` field."""
        patterns = tuple(self.layout.get('static') or ())
        if isinstance(self.layout.get('static'), str):
            patterns = (self.layout['static'], )
        paths = {id(m): name for name, m in self.named_modules()}
        for parent, name in sites:
            path = f'{paths[id(parent)]}.{name}'.lstrip('.')
            if not any(fnmatch.fnmatchcase(path, p) for p in patterns):
                yield parent, name

    def _place_dynamic_convs(self, preset: str, dynamic: Optional[dict],
                             temperature: Optional[float],
                             freeze_shared_state: bool) -> None:
        """Resolve the layout, swap the convs, let each family finalise its
        group, set the temperature and (re)apply ``frozen_stages``."""
        self.preset = preset
        self.freeze_shared_state = freeze_shared_state
        self.layout = resolve_layout(
            self.presets,
            preset,
            dynamic,
            self.layout_defaults,
            type(self).__name__,
            variant=self._layout_variant())
        for parent, name in self._unless_static(
                list(self._dynamic_sites(self.layout))):
            setattr(
                parent, name,
                make_dynamic(
                    getattr(parent, name), self.layout['conv_cfg'],
                    self.norm_cfg))
        finalize_dynamic_convs(self)
        set_temperature(self, temperature)
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        """mmdet's freezing, then the state frozen dynamic convs share
        (with ``freeze_shared_state``; see
        :meth:`~dynconv_mmdet.models.layers.DynamicConv2d.freeze_group`)."""
        super()._freeze_stages()
        if not getattr(self, 'freeze_shared_state', False):
            return
        frozen = [
            name for name, m in self.named_modules()
            if isinstance(m, DynamicConv2d) and not any(
                p.requires_grad for p in m.parameters())
        ]
        if frozen:
            freeze_dynamic_convs(self, frozen)
