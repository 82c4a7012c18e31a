# KernelWarehouse (ICML 2024): the temperature, the weight of the fixed
# one-hot cell assignment, goes 1 -> 0 linearly per iteration over the first
# 20 epochs, then stays 0 (the family's `temperature_schedule`, as the
# release's `engine.py` with `temp_epoch=20`). The backbones start at
# `temperature=1.0`.
custom_hooks = [dict(type='TemperatureAnnealingHook')]
