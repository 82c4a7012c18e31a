_base_ = [
    './mobilenetv2-0.5_8xb32-kw-recipe_in1k.py',
    '../_base_/kw_temperature_annealing_15e.py'
]

# KernelWarehouse (4x) MobileNetV2 0.5
# (`configs/mobilenetv2_050/kw4x_mobilenetv2_050.json`): label
# smoothing 0.1 (the json, unlike the static and 1/2x ones, does not set
# `smoothing: 0`, so `main.py`'s default applies); temperature annealed
# 1 -> 0 over the first 15 epochs.
model = dict(
    backbone=dict(preset='kw4x', temperature=1.0),
    head=dict(
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))
