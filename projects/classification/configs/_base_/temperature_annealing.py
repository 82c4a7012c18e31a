# DyConv / ODConv: softmax temperature 30 -> 1, linearly per iteration over
# the first 10 epochs, then 1 (DyConv, CVPR 2020; ODConv, ICLR 2022).
custom_hooks = [
    dict(type='TemperatureAnnealingHook', start=30.0, end=1.0, epochs=10)
]
