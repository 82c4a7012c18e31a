"""What every dynamic backbone shares: presets, placement and freezing.

A dynamic backbone is an mmdet backbone whose convs are replaced after it is
built, following a *layout* (which conv type, which convs) that a preset of
the backbone's own table gives, optionally overridden by ``dynamic=``.
"""
import fnmatch
import inspect
import numbers
from typing import (Any, ClassVar, Dict, Iterator, List, Mapping, NamedTuple,
                    Optional, Tuple)

import torch.nn as nn

from ..layers import (DynamicConv2d, finalize_dynamic_convs,
                      freeze_dynamic_convs, set_temperature)
from ..layers.temperature import check_temperature_value
from .layout import make_dynamic, resolve_layout
from .pretrained_mixin import PretrainedLoaderMixin

#: ``(parent module, attribute name)`` of a conv a layout makes dynamic.
Site = Tuple[nn.Module, str]

#: Arguments of our own, keyword-only in every dynamic backbone.
OWN_ARGUMENTS = ('preset', 'dynamic', 'temperature', 'strict_pretrained',
                 'freeze_shared_state')

#: What ``out_indices`` accepts: a collection of integers.
_INDEX_COLLECTIONS = (list, tuple, set, frozenset, range)


class StageTable(NamedTuple):
    """The outputs and stages of a backbone for given constructor arguments.

    Attributes:
        names (tuple[str]): The module behind each ``out_indices`` entry
            (index ``i`` -> ``names[i]``, e.g. ``'layer1'``).
        channels (tuple[int]): The channels of each of those outputs.
        max_frozen (int): The largest valid ``frozen_stages`` (-1: nothing
            frozen, 0: the stem, ``k``: the stem and the first ``k``
            stages).
    """
    names: Tuple[str, ...]
    channels: Tuple[int, ...]
    max_frozen: int


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an integer (``bool`` is not)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_choice(owner: str, key: str, value: Any, choices: Any) -> None:
    """Raise ``ValueError`` naming ``key`` unless ``value`` is one of
    ``choices`` (an architecture table's keys, e.g. ResNet depths)."""
    try:
        known = value in choices
    except TypeError:  # unhashable
        known = False
    if not known or isinstance(value, bool):
        raise ValueError(f'{owner}: {key} must be one of '
                         f'{", ".join(map(repr, choices))}; got {value!r}')


def check_stage_arguments(owner: str, table: StageTable, out_indices: Any,
                          frozen_stages: Any) -> None:
    """Check ``out_indices`` and ``frozen_stages`` against a backbone's
    :class:`StageTable`, before mmdet's constructor sees them (which fails
    with an ``AttributeError`` about a missing ``layer5``, a bare
    ``assert`` or a silently missing output).

    Args:
        owner (str): The backbone's class name, for messages.
        table (StageTable): The backbone's outputs and stages.
        out_indices: Should be a non-empty list / tuple / set of integers in
            ``0..len(table.channels) - 1``.
        frozen_stages: Should be an integer in ``-1..table.max_frozen``.

    Raises:
        TypeError: ``out_indices`` not a collection of integers, or
            ``frozen_stages`` not an integer.
        ValueError: A value outside its range (or no output at all).
    """
    last = len(table.channels) - 1
    outputs = ', '.join(
        f'{i}: {name} ({channels} channels)'
        for i, (name, channels) in enumerate(zip(table.names, table.channels)))
    valid = f'integers in 0..{last} ({outputs})'
    if not isinstance(out_indices, _INDEX_COLLECTIONS) or not all(
            is_integer(i) for i in out_indices):
        raise TypeError(f'{owner}: out_indices must be a tuple of {valid}; '
                        f'got {out_indices!r}')
    bad = sorted(i for i in out_indices if not 0 <= i <= last)
    if bad or not len(out_indices):
        what = f'{bad} out of range' if bad else 'no output'
        raise ValueError(f'{owner}: out_indices must be a non-empty tuple of '
                         f'{valid}; got {tuple(out_indices)!r} ({what})')
    frozen_range = (f'an integer in -1..{table.max_frozen} (-1: nothing '
                    'frozen, 0: the stem, k: the stem and the first k '
                    'stages)')
    if not is_integer(frozen_stages):
        raise TypeError(f'{owner}: frozen_stages must be {frozen_range}; '
                        f'got {frozen_stages!r}')
    if not -1 <= frozen_stages <= table.max_frozen:
        raise ValueError(f'{owner}: frozen_stages must be {frozen_range}; '
                         f'got {frozen_stages!r}')


class DynamicBackboneMixin(PretrainedLoaderMixin):
    """Places dynamic convs in an mmdet backbone after it is built.

    Subclasses set :attr:`presets` (their preset table) and
    :attr:`layout_defaults` (every layout field with its static value),
    implement :meth:`_dynamic_sites` and :meth:`stage_table`, and call
    :meth:`_check_positional`, :meth:`_check_arguments` and
    :meth:`_split_init_cfg` before, and :meth:`_place_dynamic_convs` after,
    the mmdet constructor. Arguments mmdet would refuse late or cryptically
    (``out_indices`` / ``frozen_stages`` out of range, a depth or arch not in
    the table, a temperature that is not a number) are refused there,
    naming the argument and its valid range.
    """

    #: Preset name -> layout overrides (``None``: static).
    presets: ClassVar[Dict[str, Optional[dict]]] = {}
    #: Every layout field with its static default.
    layout_defaults: ClassVar[dict] = {}

    @classmethod
    def mmdet_backbone(cls) -> type:
        """The mmdet backbone class this one extends."""
        return next(
            c for c in cls.__mro__ if issubclass(c, nn.Module)
            and not issubclass(c, DynamicBackboneMixin))

    @classmethod
    def _check_positional(cls, args: tuple) -> None:
        """Positional arguments belong to the mmdet backbone; ours are
        keyword-only. A string among them is a preset given by position."""
        mmdet_cls = cls.mmdet_backbone()
        for value in args:
            if isinstance(value, (str, dict)):
                raise TypeError(
                    f'{cls.__name__}: positional arguments go to mmdet\'s '
                    f'{mmdet_cls.__name__} in its order; '
                    f'{", ".join(OWN_ARGUMENTS)} are keyword-only (e.g. '
                    f'{cls.__name__}(..., preset={value!r})).')

    @classmethod
    def mmdet_arguments(cls, *args, **kwargs) -> Dict[str, Any]:
        """Every argument mmdet's constructor gets when this class is built
        with ``cls(*args, **kwargs)`` (a config's keys, our own included),
        mmdet's defaults filled in, without building anything.

        Our constructors pass their first argument and ``*args`` to mmdet by
        position (the position wins over a keyword of ours that mmdet also
        takes, e.g. MobileNetV2's ``out_indices``), and ``**kwargs`` and
        those of our keyword-only arguments that mmdet also takes by name.

        Raises:
            TypeError: Arguments that neither constructor takes.
        """
        ours = inspect.signature(cls.__init__)
        mmdet = inspect.signature(cls.mmdet_backbone().__init__)
        try:
            bound = ours.bind(None, *args, **kwargs)
        except TypeError as err:
            raise TypeError(f'{cls.__name__}: {err}') from None
        bound.apply_defaults()
        positional: List[Any] = []
        keywords: Dict[str, Any] = {}
        for name, param in list(ours.parameters.items())[1:]:
            value = bound.arguments[name]
            if param.kind is param.VAR_POSITIONAL:
                positional.extend(value)
            elif param.kind is param.VAR_KEYWORD:
                keywords.update(value)
            elif param.kind in (param.POSITIONAL_ONLY,
                                param.POSITIONAL_OR_KEYWORD):
                positional.append(value)
            elif name in mmdet.parameters:
                keywords[name] = value
        by_position = list(mmdet.parameters)[1:len(positional) + 1]
        return cls._bind_mmdet(
            tuple(positional), {
                k: v
                for k, v in keywords.items() if k not in by_position
            })

    @classmethod
    def _bind_mmdet(cls, args: tuple, kwargs: dict) -> Dict[str, Any]:
        """The arguments of mmdet's ``__init__(*args, **kwargs)`` by name,
        its defaults filled in."""
        mmdet = inspect.signature(cls.mmdet_backbone().__init__)
        try:
            bound = mmdet.bind(None, *args, **kwargs)
        except TypeError as err:
            raise TypeError(f'{cls.__name__} (mmdet\'s '
                            f'{cls.mmdet_backbone().__name__}): {err}') \
                from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        del arguments[next(iter(mmdet.parameters))]  # self
        return arguments

    @classmethod
    def stage_table(cls, arguments: Mapping[str, Any]) -> StageTable:
        """The outputs and stages of the backbone mmdet builds from
        ``arguments`` (:meth:`mmdet_arguments`), read from the class's
        architecture table without building it.

        Raises:
            ValueError: An architecture argument (depth, arch, ...) that the
                table does not have, named with the valid choices.
        """
        raise NotImplementedError

    def _check_arguments(self, temperature: Any, *args, **kwargs) -> None:
        """Before mmdet's constructor: the type of ``temperature`` (its
        range is checked per family once the layers exist), then
        ``out_indices`` and ``frozen_stages`` (see
        :func:`check_stage_arguments`) of mmdet's constructor called with
        ``*args, **kwargs``, exactly as ours is about to call it."""
        check_temperature_value(temperature, owner=type(self).__name__)
        self._checked_stage_table(self._bind_mmdet(args, kwargs))

    @classmethod
    def check_stage_arguments(cls, *args, **kwargs) -> StageTable:
        """Check ``out_indices`` and ``frozen_stages`` of
        ``cls(*args, **kwargs)`` (see :func:`check_stage_arguments`) and
        return the backbone's :class:`StageTable`, without building it."""
        return cls._checked_stage_table(cls.mmdet_arguments(*args, **kwargs))

    @classmethod
    def _checked_stage_table(cls, arguments: Mapping[str, Any]) -> StageTable:
        table = cls.stage_table(arguments)
        check_stage_arguments(cls.__name__, table, arguments['out_indices'],
                              arguments['frozen_stages'])
        return table

    @classmethod
    def output_channels(cls, *args, **kwargs) -> Tuple[int, ...]:
        """The channels of the outputs of ``cls(*args, **kwargs)``, in the
        order ``forward`` returns them (stage order, whatever the order of
        ``out_indices``), without building the backbone.

        Raises:
            TypeError, ValueError: As :meth:`check_stage_arguments`.
        """
        arguments = cls.mmdet_arguments(*args, **kwargs)
        table = cls._checked_stage_table(arguments)
        return tuple(table.channels[i]
                     for i in sorted(set(arguments['out_indices'])))

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
