"""Training-time helpers (hooks) of dynconv-mmdet."""
from .hooks import TemperatureAnnealingHook

__all__ = ['TemperatureAnnealingHook']
