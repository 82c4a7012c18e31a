_base_ = './resnet50_8xb32_in1k.py'

# CondConv 8x: block convs of the last stage (layer4) and an
# 8-expert classifier (CondConv paper).
model = dict(
    backbone=dict(preset='condconv8x'),
    head=dict(type='CondConvClsHead', num_experts=8))
