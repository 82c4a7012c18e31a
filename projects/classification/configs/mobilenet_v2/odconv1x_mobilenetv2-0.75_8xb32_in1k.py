_base_ = [
    './mobilenetv2-0.75_8xb32_in1k.py', '../_base_/temperature_annealing.py'
]

# ODConv (1 kernel); temperature annealed 30 -> 1 over the first 10 epochs.
model = dict(backbone=dict(preset='odconv1x', temperature=30.0))
