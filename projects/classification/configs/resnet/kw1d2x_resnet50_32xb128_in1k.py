_base_ = [
    './resnet50_32xb128-kw-recipe_in1k.py',
    '../_base_/kw_temperature_annealing.py'
]

# KernelWarehouse (1/2x) ResNet-50 (`configs/resnet50/kw1d2x_resnet50.json`):
# drop path 0.1; temperature annealed 1 -> 0 over the first 20 epochs.
model = dict(backbone=dict(preset='kw1d2x', temperature=1.0))
