# KernelWarehouse MobileNetV2: the temperature goes 1 -> 0 linearly per
# iteration over the first 15 epochs (the release's MobileNetV2 jsons,
# `temp_epoch: 15`), then stays 0.
custom_hooks = [dict(type='TemperatureAnnealingHook', epochs=15)]
