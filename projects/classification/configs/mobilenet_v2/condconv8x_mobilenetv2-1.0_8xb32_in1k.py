_base_ = './mobilenetv2-1.0_8xb32_in1k.py'

# CondConv 8x (see README for which convs are dynamic) and an
# 8-expert classifier (CondConv paper).
model = dict(
    backbone=dict(preset='condconv8x'),
    head=dict(type='CondConvClsHead', num_experts=8))
