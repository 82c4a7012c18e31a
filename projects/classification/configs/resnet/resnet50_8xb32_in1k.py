_base_ = [
    '../_base_/models/dynamic_resnet50.py',
    '../_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/imagenet_sgd_step_100e.py',
    '../_base_/default_runtime.py'
]

# ResNet-50, dropout 0.2 before the FC (ODConv paper): all in the bases.
