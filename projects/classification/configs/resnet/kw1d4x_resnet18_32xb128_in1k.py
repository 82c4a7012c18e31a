_base_ = [
    './resnet18_32xb128-kw-recipe_in1k.py',
    '../_base_/kw_temperature_annealing.py'
]

# KernelWarehouse (1/4x) ResNet-18 (`configs/resnet18/kw1d4x_resnet18.json`):
# no drop path, no dropout and no mixup / CutMix (label smoothing 0.1 stays);
# temperature annealed 1 -> 0 over the first 20 epochs.
model = dict(
    backbone=dict(preset='kw1d4x', temperature=1.0, drop_path_rate=0.0),
    train_cfg=None)
