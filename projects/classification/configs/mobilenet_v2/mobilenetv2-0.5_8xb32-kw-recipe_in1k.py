_base_ = './mobilenetv2-1.0_8xb32-kw-recipe_in1k.py'

# MobileNetV2 0.5 with the KernelWarehouse release's recipe
# (`configs/mobilenetv2_050/mobilenetv2_050.json`); the last conv keeps 1280
# channels for widen factors <= 1.
model = dict(backbone=dict(widen_factor=0.5))
