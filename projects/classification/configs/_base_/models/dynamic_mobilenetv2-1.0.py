# MobileNetV2 1.0 for ImageNet built on the detection backbone class; the
# classifier reads the last 1x1 conv (1280 channels, out_indices=(7, )).
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmdet.DynamicMobileNetV2',
        widen_factor=1.0,
        preset='static',
        out_indices=(7, ),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='DropoutLinearClsHead',
        num_classes=1000,
        in_channels=1280,
        dropout_rate=0.2,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)),
)
