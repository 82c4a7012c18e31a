_base_ = './resnet50_32xb128-kw-recipe_in1k.py'

# ResNet-18 with the KernelWarehouse release's recipe
# (`configs/resnet18/resnet18.json`: no drop path).
model = dict(
    backbone=dict(depth=18, drop_path_rate=0.0), head=dict(in_channels=512))
