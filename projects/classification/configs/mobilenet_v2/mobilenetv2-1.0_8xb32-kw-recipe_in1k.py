_base_ = [
    '../_base_/models/dynamic_mobilenetv2-1.0.py',
    '../_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/imagenet_sgd_nesterov_cos_150e.py',
    '../_base_/default_runtime.py'
]

# MobileNetV2 1.0 trained with the KernelWarehouse release's recipe
# (`configs/mobilenetv2_100/mobilenetv2_100.json`), the baseline of the KW
# MobileNetV2 configs: SGD (Nesterov), 150 epochs, batch 256 (8 GPUs x 32),
# the "traditional" augmentation (RandomResizedCrop 224 + flip; resize 256 +
# center crop 224), no dropout, no label smoothing, no mixup / CutMix.
model = dict(head=dict(dropout_rate=0.0))
