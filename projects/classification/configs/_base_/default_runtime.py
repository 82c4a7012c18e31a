# Runtime shared by every ImageNet config of the classification project.
default_scope = 'mmpretrain'

# `dynconv_mmdet` registers the dynamic convolutions, the backbones
# (mmdet.DynamicResNet / mmdet.DynamicMobileNetV2) and the
# TemperatureAnnealingHook; the project package registers the heads.
# Run from the repository root (the project tools put it on sys.path).
custom_imports = dict(
    imports=[
        'dynconv_mmdet', 'dynconv_mmdet.engine',
        'projects.classification.dynconv_cls'
    ],
    allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # atomic saving: a killed run or a full disk never loses a checkpoint
    checkpoint=dict(
        type='AtomicCheckpointHook',
        interval=1,
        max_keep_ckpts=3,
        save_best='auto'),
    # stop at the first iteration whose loss is NaN or infinite
    finite_loss=dict(type='CheckFiniteLossHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)
