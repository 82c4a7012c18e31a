_base_ = [
    '../_base_/models/dynamic_resnet50_mixup.py',
    '../_base_/datasets/imagenet_bs128_randaug.py',
    '../_base_/schedules/imagenet_adamw_cos_300e.py',
    '../_base_/default_runtime.py'
]

# ResNet-50 trained with the KernelWarehouse release's recipe (its
# `configs/resnet50/resnet50.json`: drop path 0.1), the baseline of the KW
# ResNet-50 configs: AdamW, 300 epochs, total batch 4096 (32 GPUs x 128, or
# 8 x 128 with `optim_wrapper.accumulative_counts=4` as the release).
