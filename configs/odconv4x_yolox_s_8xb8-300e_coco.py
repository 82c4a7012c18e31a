# YOLOX-S with ODConv (4 kernels) in every CSPDarknet conv but the Focus
# stem's (preset 'odconv4x'), otherwise mmdet's recipe from scratch (see
# yolox_s_8xb8-300e_coco.py). No published COCO result exists.
_base_ = './yolox_s_8xb8-300e_coco.py'

model = dict(backbone=dict(preset='odconv4x'))
