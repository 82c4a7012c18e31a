# RTMDet-tiny, static CSPNeXt backbone: mmdet's config (300 epochs, 8 GPUs x
# 32 images, AdamW, EMA, ImageNet `cspnext-tiny` weights; mmdet: 40.9 box
# AP) with the backbone built by our DynamicCSPNeXt at preset 'static', i.e.
# mmdet's CSPNeXt whose ImageNet checkpoint is loaded strictly. The baseline
# of the dynamic variants.
_base_ = 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'

custom_imports = dict(imports=['dynconv_mmdet'], allow_failed_imports=False)

# Checkpoints (tools/test.py, load_from, --resume) are read with
# weights_only=True and must fit the model exactly (`strict_load = False`
# or `tools/test.py --partial-load` loads only what fits). The runner loads
# every image with CheckedLoadImageFromFile, which names a file it cannot
# read; the pipelines keep mmdet's `LoadImageFromFile` for DetInferencer.
runner_type = 'SafeLoadRunner'
strict_load = True

# Checkpoints written atomically, training stopped at the first NaN /
# infinite loss, evaluation refused on NaN / infinite raw predictions
# (dynconv_mmdet/engine/hooks).
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook'),
    finite_loss=dict(type='CheckFiniteLossHook'),
    finite_predictions=dict(type='CheckFinitePredictionsHook'))

model = dict(
    backbone=dict(type='DynamicCSPNeXt', preset='static', temperature=None))
