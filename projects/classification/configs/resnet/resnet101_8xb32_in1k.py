_base_ = [
    '../_base_/models/dynamic_resnet50.py',
    '../_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/imagenet_sgd_step_100e.py',
    '../_base_/default_runtime.py'
]

# ResNet-101, dropout 0.2 before the FC (ODConv paper).
model = dict(
    backbone=dict(depth=101), head=dict(in_channels=2048, dropout_rate=0.2))
