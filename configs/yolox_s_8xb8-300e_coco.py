# YOLOX-S, static CSPDarknet backbone: mmdet's config (300 epochs from
# scratch, 8 GPUs x 8 images, SGD, EMA; mmdet: 40.5 box AP) with the
# backbone built by our DynamicCSPDarknet at preset 'static', i.e. mmdet's
# CSPDarknet. The baseline of the dynamic variants.
_base_ = 'mmdet::yolox/yolox_s_8xb8-300e_coco.py'

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
    backbone=dict(type='DynamicCSPDarknet', preset='static', temperature=None))
