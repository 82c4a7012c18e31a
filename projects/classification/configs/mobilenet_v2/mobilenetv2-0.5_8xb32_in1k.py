_base_ = [
    '../_base_/models/dynamic_mobilenetv2-1.0.py',
    '../_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/imagenet_sgd_cos_150e.py',
    '../_base_/default_runtime.py'
]

# MobileNetV2 0.5, dropout 0.0 before the FC (ODConv paper); the
# last conv keeps 1280 channels for widen factors <= 1.
model = dict(backbone=dict(widen_factor=0.5), head=dict(dropout_rate=0.0))
