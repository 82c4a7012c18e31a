"""Reading and setting the temperature of every dynamic layer of a model.

Each family declares what its temperature means, its valid range and its
default (:class:`~.base.DynamicConv2d`); layers of a family without a
temperature are left alone.
"""
from typing import Callable, Dict, Optional, Union

import torch.nn as nn

from .base import TemperatureMixin

#: A temperature for all layers, or one computed per family class.
TemperatureValue = Optional[Union[float, Callable[[type], float]]]


def set_temperature(module: nn.Module, value: TemperatureValue = None) -> int:
    """Set the temperature of every layer with a temperature in ``module``.

    Args:
        module (nn.Module): A layer or a whole model.
        value (float | callable, optional): The temperature; a callable
            gets the layer's class and returns its value (e.g. from the
            family's schedule); ``None`` sets each family's
            ``temperature_default``.

    Returns:
        int: The number of layers changed.

    Raises:
        ValueError: A value outside a family's valid range.
    """
    layers = [m for m in module.modules() if isinstance(m, TemperatureMixin)]
    for layer in layers:
        layer.temperature = value(type(layer)) if callable(value) else value
    return len(layers)


def get_temperatures(module: nn.Module) -> Dict[str, float]:
    """Map the name of every temperature-controlled layer to its value."""
    return {
        name: m.temperature
        for name, m in module.named_modules()
        if isinstance(m, TemperatureMixin)
    }
