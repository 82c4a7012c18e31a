# RTMDet-tiny with ODConv (1 kernel) in every CSPNeXt conv but the stem
# (preset 'odconv1x'), otherwise mmdet's recipe (see
# rtmdet_tiny_8xb32-300e_coco.py). The dense ImageNet `cspnext-tiny`
# checkpoint initialises the dynamic convs (every kernel = the dense kernel,
# the attention from its own init). No published COCO result exists.
_base_ = './rtmdet_tiny_8xb32-300e_coco.py'

model = dict(backbone=dict(preset='odconv1x'))
