_base_ = [
    './mobilenetv2-1.0_8xb32-kw-recipe_in1k.py',
    '../_base_/kw_temperature_annealing_15e.py'
]

# KernelWarehouse (1/2x) MobileNetV2 1.0
# (`configs/mobilenetv2_100/kw1d2x_mobilenetv2_100.json`,
# `models/kw1d2x_mobilenetv2.py`): the classifier is a KW linear layer with
# a warehouse of its own (`KWLinearClsHead`); no label smoothing;
# temperature (backbone and classifier) annealed 1 -> 0 over the first 15
# epochs.
model = dict(
    backbone=dict(preset='kw1d2x', temperature=1.0),
    head=dict(type='KWLinearClsHead', temperature=1.0))
