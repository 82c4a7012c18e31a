_base_ = [
    './mobilenetv2-1.0_8xb32_in1k.py', '../_base_/temperature_annealing.py'
]

# DyConv (4 kernels); temperature annealed 30 -> 1 over the first 10 epochs.
model = dict(backbone=dict(preset='dyconv4x', temperature=30.0))
