_base_ = [
    '../_base_/models/dynamic_resnet50.py',
    '../_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/imagenet_sgd_step_100e.py',
    '../_base_/default_runtime.py'
]

# ResNet-18, dropout 0.1 before the FC (ODConv paper).
model = dict(
    backbone=dict(depth=18), head=dict(in_channels=512, dropout_rate=0.1))
