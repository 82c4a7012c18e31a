_base_ = [
    '../_base_/models/dynamic_mobilenetv2-1.0.py',
    '../_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/imagenet_sgd_cos_150e.py',
    '../_base_/default_runtime.py'
]

# MobileNetV2 1.0, dropout 0.2 before the FC (ODConv paper): all in
# the bases.
