"""Reading and setting the temperature of every dynamic layer of a model."""
from typing import Dict

import torch.nn as nn

from .base import TemperatureMixin


def set_temperature(module: nn.Module, value: float) -> int:
    """Set the temperature of every DyConv2d / ODConv2d inside ``module``.

    Returns:
        int: The number of layers changed.
    """
    layers = [m for m in module.modules() if isinstance(m, TemperatureMixin)]
    for layer in layers:
        layer.temperature = value
    return len(layers)


def get_temperatures(module: nn.Module) -> Dict[str, float]:
    """Map the name of every temperature-controlled layer to its value."""
    return {
        name: m.temperature
        for name, m in module.named_modules()
        if isinstance(m, TemperatureMixin)
    }
