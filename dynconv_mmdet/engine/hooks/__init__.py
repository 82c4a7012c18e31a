"""Hooks registered in mmengine's root ``HOOKS`` registry."""
from .temperature_annealing_hook import TemperatureAnnealingHook

__all__ = ['TemperatureAnnealingHook']
