# ResNet-50 for ImageNet built on the detection backbone class, so the
# trained weights transfer to detection unchanged. preset='static' is the
# plain ResNet; the variant configs switch the preset.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmdet.DynamicResNet',
        depth=50,
        preset='static',
        num_stages=4,
        out_indices=(3, ),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='DropoutLinearClsHead',
        num_classes=1000,
        in_channels=2048,
        dropout_rate=0.2,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)),
)
