"""The temperature of the dynamic layers: declaring, checking and setting it.

Each family declares what its temperature means, its valid range and its
default (:class:`~.base.DynamicConv2d`) and derives from
:class:`TemperatureMixin`, which checks every value against that range
(:func:`check_temperature`). :func:`set_temperature` and
:func:`get_temperatures` set and read the temperature of every layer of a
model; layers of a family without a temperature are left alone.
"""
import math
import numbers
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from torch import Tensor


class TemperatureMixin:
    """A temperature that is not saved, checked against the family's range.

    Families with a temperature derive from this mixin and declare
    :attr:`DynamicConv2d.temperature_default` (and, where it differs from
    ``T > 0``, :attr:`~DynamicConv2d.temperature_range`).
    """

    _temperature: float

    @property
    def temperature(self) -> float:
        """The attention temperature (see the family's
        ``temperature_doc``)."""
        return self._temperature

    @temperature.setter
    def temperature(self, value: Optional[float]) -> None:
        if value is None:
            value = type(self).temperature_default
        self._temperature = check_temperature(type(self), value)


def is_temperature_number(value: Any) -> bool:
    """Whether ``value`` is a real number a temperature can take (an
    ``int``, a ``float``, a NumPy scalar or a one-element real tensor; not
    a ``bool``, a string or a sequence)."""
    if isinstance(value, Tensor):
        return value.numel() == 1 and not value.is_complex() \
            and value.dtype != torch.bool
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def temperature_range_text(cls: type) -> str:
    """The valid temperatures of family ``cls``, e.g. ``'(0, inf]'``."""
    low, high = cls.temperature_range
    bound = '[' if cls.temperature_low_inclusive else '('
    return f'{bound}{low:g}, {high:g}]'


def check_temperature(cls: type, value: Any) -> float:
    """Return ``value`` as a float if it is a valid temperature of family
    ``cls``.

    Raises:
        TypeError: Not a number (e.g. the string ``'30'``, a list, a bool).
        ValueError: Outside the family's :attr:`temperature_range`.
    """
    doc = f' ({cls.temperature_doc})' if cls.temperature_doc else ''
    if not is_temperature_number(value):
        raise TypeError(
            f'{cls.__name__}: temperature must be a number in '
            f'{temperature_range_text(cls)} or None (the family\'s default, '
            f'{cls.temperature_default}), got {value!r} of type '
            f'{type(value).__name__}{doc}')
    value = float(value)
    low, high = cls.temperature_range
    above = value >= low if cls.temperature_low_inclusive else value > low
    if not (above and value <= high and not math.isnan(value)):
        raise ValueError(f'{cls.__name__}: temperature must be in '
                         f'{temperature_range_text(cls)}, got {value}{doc}')
    return value


#: A temperature for all layers, or one computed per family class.
TemperatureValue = Optional[Union[float, Callable[[type], float]]]


def temperature_families() -> List[type]:
    """Every family with a temperature imported so far (subclasses of
    :class:`TemperatureMixin` that declare a
    ``temperature_default``), in definition order."""
    found: List[type] = []
    pending = list(TemperatureMixin.__subclasses__())
    while pending:
        cls = pending.pop(0)
        if cls not in found and \
                getattr(cls, 'temperature_default', None) is not None:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def check_temperature_value(value: Any,
                            families: Optional[Sequence[type]] = None,
                            owner: str = '') -> None:
    """Refuse a temperature that is not a number, ``None`` or a callable,
    before anything is set or built.

    Args:
        value: What was given as ``temperature``.
        families (Sequence[type], optional): The families concerned, whose
            valid ranges the message lists; default: every family with a
            temperature (:func:`temperature_families`); an empty sequence:
            none (the model has no layer with a temperature).
        owner (str): Who takes the value (e.g. a backbone's class name),
            for the message.

    Raises:
        TypeError: ``value`` is e.g. the string ``'30'``, a list or a bool;
            the message names ``temperature``, the value and the valid
            ranges.
    """
    if value is None or callable(value) or is_temperature_number(value):
        return
    if families is None:
        families = temperature_families()
    ranges = '; '.join(f'{cls.__name__} {temperature_range_text(cls)}'
                       for cls in families)
    valid = f'valid ranges: {ranges}' if ranges else \
        'no layer of this model has a temperature'
    prefix = f'{owner}: ' if owner else ''
    raise TypeError(f'{prefix}temperature must be a number ({valid}) or None '
                    f'(each family\'s default), got {value!r} of type '
                    f'{type(value).__name__}')


def set_temperature(module: nn.Module, value: TemperatureValue = None) -> int:
    """Set the temperature of every layer with a temperature in ``module``.

    Args:
        module (nn.Module): A layer or a whole model.
        value (float | callable, optional): The temperature; a callable
            gets the layer's class and returns its value (e.g. from the
            family's schedule); ``None`` sets each family's
            ``temperature_default``.

    Every value is checked before any layer changes, so a refused value
    leaves the temperatures as they were. A value that is not a number is
    refused even when ``module`` has no layer with a temperature (a static
    backbone given ``temperature='30'``).

    Returns:
        int: The number of layers changed.

    Raises:
        TypeError: A value that is not a number nor ``None`` (e.g. the
            string ``'30'`` or a list); the message names each family's
            valid range.
        ValueError: A value outside a family's valid range.
    """
    layers = [m for m in module.modules() if isinstance(m, TemperatureMixin)]
    families = list(dict.fromkeys(type(layer) for layer in layers))
    check_temperature_value(value, families)
    values = {}
    for cls in families:
        given = value(cls) if callable(value) else value
        values[cls] = check_temperature(
            cls, cls.temperature_default if given is None else given)
    for layer in layers:
        layer.temperature = values[type(layer)]
    return len(layers)


def get_temperatures(module: nn.Module) -> Dict[str, float]:
    """Map the name of every temperature-controlled layer to its value."""
    return {
        name: m.temperature
        for name, m in module.named_modules()
        if isinstance(m, TemperatureMixin)
    }
