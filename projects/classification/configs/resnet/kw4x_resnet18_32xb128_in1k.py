_base_ = [
    './resnet18_32xb128-kw-recipe_in1k.py',
    '../_base_/kw_temperature_annealing.py'
]

# KernelWarehouse (4x) ResNet-18 (`configs/resnet18/kw4x_resnet18.json`):
# drop path 0.1; temperature annealed 1 -> 0 over the first 20 epochs.
model = dict(backbone=dict(preset='kw4x', temperature=1.0, drop_path_rate=0.1))
