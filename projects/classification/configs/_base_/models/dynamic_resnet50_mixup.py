# ResNet-50 for ImageNet as the KernelWarehouse release trains it: drop path
# 0.1 on every residual branch (the same rate for every block), no dropout
# before the FC, mixup (alpha 0.8) or CutMix (alpha 1.0) on every batch, one
# of the two with probability 0.5 each (timm's `Mixup` with `prob=1.0`,
# `switch_prob=0.5`), and cross-entropy on the mixed labels smoothed by 0.1
# (timm's mixup targets with `label_smoothing=0.1` and
# `SoftTargetCrossEntropy`).
_base_ = './dynamic_resnet50.py'

model = dict(
    backbone=dict(drop_path_rate=0.1),
    head=dict(
        dropout_rate=0.0,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
    train_cfg=dict(
        augments=[
            dict(type='Mixup', alpha=0.8),
            dict(type='CutMix', alpha=1.0),
        ],
        probs=[0.5, 0.5]),
)
