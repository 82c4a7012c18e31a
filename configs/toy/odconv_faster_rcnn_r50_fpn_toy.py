# Faster R-CNN, ResNet-50 with ODConv (1 kernel) + FPN on the toy COCO set:
# the CPU-sized main job of the README (about 13 minutes on 2 CPU cores;
# see the README for the measured numbers).
#
# Same model as `../odconv_faster_rcnn_r50_fpn_1x.py` with these changes:
# - data: the generated toy set (4 classes of flat shapes, 320x320 images),
#   `python tools/misc/generate_toy_coco.py --out data/toy_coco`, read by
#   mmdet's CocoDataset with the generator's classes and palette, resized
#   to 256x256 to fit the CPU budget;
# - from scratch (no ImageNet checkpoint can be downloaded here), so no
#   frozen stages and BatchNorm in training mode (it learns its statistics);
# - a short iteration-based schedule for a batch of 2 with its own warm-up
#   and LR (gradients clipped), fewer RPN proposals and sampled RoIs,
#   evaluated once at the end by tools/test.py;
# - a fixed seed, so that a run repeats bit for bit on the same machine and
#   thread count.
_base_ = '../odconv_faster_rcnn_r50_fpn_1x.py'

data_root = 'data/toy_coco/'
dataset_type = 'CocoDataset'
# CLASSES / PALETTE of tools/misc/generate_toy_coco.py, in category-id order.
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'star'),
    palette=[(210, 40, 40), (40, 170, 60), (40, 70, 210), (235, 205, 35)])
image_scale = (256, 256)
max_iters = 250

model = dict(
    backbone=dict(frozen_stages=-1, norm_eval=False, init_cfg=None),
    roi_head=dict(bbox_head=dict(num_classes=len(metainfo['classes']))),
    # A few objects per image: fewer proposals and 128 sampled RoIs per
    # image are plenty and keep the heads cheap on a CPU.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=300), rcnn=dict(max_per_img=50)))

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric='bbox')
# Evaluation runs once, after training, through tools/test.py.
val_dataloader = None
val_evaluator = None
val_cfg = None

train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[int(max_iters * 0.75),
                    int(max_iters * 0.9)],
        gamma=0.1)
]
# From scratch, batch 2: lr 0.01 (0.02 diverges here), gradients clipped.
optim_wrapper = dict(
    optimizer=dict(lr=0.01), clip_grad=dict(max_norm=10, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=2)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(
        type='AtomicCheckpointHook', by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)

# A fixed seed seeds Python, NumPy and torch, the sampler and the data
# workers (flips). The CPU kernels of this run are deterministic for a given
# number of threads: two runs give bit-identical weights with or without
# mmengine's `deterministic=True`. That flag would only call
# torch.use_deterministic_algorithms(True), whose CPU effect is to fill every
# new tensor with NaN (about a tenth of the CPU time of an iteration here),
# and which makes ops without a deterministic CUDA kernel raise on a GPU.
randomness = dict(seed=0, deterministic=False)
