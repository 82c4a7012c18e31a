# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The real-time configs (RTMDet-tiny, YOLOX-S; every preset) train a few
iterations on the generated toy COCO set and validate, in-process.

Each run keeps the config's model, optimizer, hooks (EMA with averaged
buffers, pipeline / mode switches) and data pipeline (scaled to 128 px);
only the data, the schedule (a few iterations) and the number of classes
change. RTMDet's backbone starts from an ImageNet-style ``cspnext-tiny``
checkpoint made here from a static backbone (the dense-to-dynamic start of
the dynamic presets). Validation runs through the EMA swap.
"""
import glob
import os.path as osp

import pytest
import torch
import yaml
from mmengine.config import Config

from dynconv_mmdet.models.layers import DynamicConv2d
from tools.misc.generate_toy_coco import CLASSES

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DETECTORS = ('RTMDet', 'YOLOX')


def _realtime_models():
    """``(config path, detector, preset)`` of the metafile's real-time
    models."""
    with open(osp.join(REPO, 'configs', 'metafile.yml')) as f:
        models = yaml.safe_load(f)['Models']
    return [(osp.join(REPO, m['Config']), m['Metadata']['Detector'],
             m['Metadata']['Backbone Preset']) for m in models
            if m['Metadata']['Detector'] in DETECTORS]


MODELS = _realtime_models()

_COMMON = """
_base_ = {config!r}
data_root = {data_root!r}
classes = {classes!r}
img_scale = (128, 128)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', size=img_scale, pad_val=dict(img=(114, 114, 114))),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
_toy = dict(data_root=data_root, metainfo=dict(classes=classes))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), pipeline=test_pipeline,
                 **_toy))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
# validation runs once, called by the test after training
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                 max_iters={iters}, val_begin={iters} + 1)
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False,
                        begin=0, end={iters})]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(by_epoch=False, interval={iters}, max_keep_ckpts=1),
    visualization=dict(draw=False))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
"""

# mmdet's RTMDet-tiny train pipeline at 128 px
_RTMDET = """
model = dict(
    backbone=dict(init_cfg=dict(checkpoint={checkpoint!r})),
    bbox_head=dict(num_classes=len(classes)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='CachedMosaic', img_scale=img_scale, pad_val=114.0,
         max_cached_images=4, random_pop=False),
    dict(type='RandomResize', scale=(256, 256), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=img_scale),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=img_scale, pad_val=dict(img=(114, 114, 114))),
    dict(type='CachedMixUp', img_scale=img_scale, ratio_range=(1.0, 1.0),
         max_cached_images=2, random_pop=False, pad_val=(114, 114, 114),
         prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size={batch}, num_workers=0, persistent_workers=False,
    pin_memory=False,
    dataset=dict(ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'), pipeline=train_pipeline,
                 **_toy))
"""

# mmdet's YOLOX-S train pipeline (MultiImageMixDataset) at 128 px
_YOLOX = """
# scores after two iterations are low: keep every box for the metric
model = dict(
    bbox_head=dict(num_classes=len(classes)), test_cfg=dict(score_thr=0.0))
train_pipeline = [
    dict(type='Mosaic', img_scale=img_scale, pad_val=114.0),
    dict(type='RandomAffine', scaling_ratio_range=(0.1, 2),
         border=(-img_scale[0] // 2, -img_scale[1] // 2)),
    dict(type='MixUp', img_scale=img_scale, ratio_range=(0.8, 1.6),
         pad_val=114.0),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', pad_to_square=True,
         pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size={batch}, num_workers=0, persistent_workers=False,
    dataset=dict(
        pipeline=train_pipeline,
        dataset=dict(ann_file='annotations/instances_train.json',
                     data_prefix=dict(img='train/'), **_toy)))
"""


@pytest.fixture(scope='module')
def toy_root(toy_coco) -> str:
    return toy_coco(4, 2)


@pytest.fixture(scope='module')
def cspnext_checkpoint(tmp_path_factory) -> str:
    """An mmpretrain-style ImageNet ``cspnext-tiny`` checkpoint (what the
    RTMDet configs download), made from the static config's backbone."""
    from mmdet.registry import MODELS as REGISTRY
    static = next(path for path, det, preset in MODELS
                  if det == 'RTMDet' and preset == 'static')
    cfg = Config.fromfile(static).model.backbone
    cfg.init_cfg = None
    backbone = REGISTRY.build(cfg)
    backbone.init_weights()
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(1000, 384)
    state['head.fc.bias'] = torch.zeros(1000)
    path = str(tmp_path_factory.mktemp('ckpt') / 'cspnext-tiny_imagenet.pth')
    torch.save(dict(state_dict=state, meta=dict(epoch=600)), path)
    return path


def _runs():
    """Every real-time preset trains once, on the detectors in turn: the
    detectors' other configs differ from these only by the preset (their
    contents: ``test_realtime_configs.py``). Dynamic presets alternate
    between one and two images per batch, so each detector trains a
    dynamic backbone on one image (the attention BatchNorm); the static
    baseline comes first."""
    presets = []
    for _, _, preset in MODELS:
        if preset not in presets:
            presets.append(preset)
    presets.sort(key=lambda preset: preset != 'static')
    runs = []
    for i, preset in enumerate(presets):
        detector = DETECTORS[i % len(DETECTORS)]
        path = next(p for p, det, pre in MODELS
                    if det == detector and pre == preset)
        # the first dynamic preset of each detector on one image
        batch = 2 if preset == 'static' else 1 + (i - 1) // len(DETECTORS)
        runs.append(
            pytest.param(
                path,
                detector,
                preset,
                batch,
                id=f'{osp.basename(path)[:-3]}-b{batch}'))
    return runs


@pytest.mark.parametrize('config,detector,preset,batch', _runs())
def test_realtime_config_trains_and_validates(config, detector, preset, batch,
                                              toy_root, cspnext_checkpoint,
                                              tmp_path, monkeypatch):
    from mmengine.runner import Runner
    iters = 2
    text = _COMMON.format(
        config=config,
        data_root=toy_root + '/',
        classes=tuple(CLASSES),
        iters=iters)
    text += (_RTMDET if detector == 'RTMDet' else _YOLOX).format(
        batch=batch, checkpoint=cspnext_checkpoint)
    cfg_file = tmp_path / 'run.py'
    cfg_file.write_text(text)
    monkeypatch.chdir(tmp_path)
    # no yapf formatting of the config text (seconds per dump on a CPU)
    cfg = Config.fromfile(str(cfg_file), format_python_code=False)
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    ema_hooks = [h for h in runner.hooks if type(h).__name__ == 'EMAHook']
    assert len(ema_hooks) == 1
    runner.train()

    backbone = runner.model.backbone
    assert backbone.preset == preset
    dynamic = [m for m in backbone.modules() if isinstance(m, DynamicConv2d)]
    assert bool(dynamic) == (preset != 'static')

    # validation with the EMA weights swapped in, then swapped back
    params = {k: v.clone() for k, v in runner.model.state_dict().items()}
    metrics = runner.val_loop.run()
    assert -1.0 <= metrics['coco/bbox_mAP'] <= 1.0
    for key, value in runner.model.state_dict().items():
        assert torch.equal(value, params[key]), key

    ckpt = torch.load(
        osp.join(cfg.work_dir, f'iter_{iters}.pth'),
        map_location='cpu',
        weights_only=True)
    ema = ckpt['ema_state_dict']
    assert set(ema) == {'steps'} | {f'module.{k}' for k in params}
    assert not any('temperature' in k for k in ckpt['state_dict'])
    log = open(glob.glob(osp.join(cfg.work_dir, '*', '*.log'))[0]).read()
    assert 'loss' in log
    if detector == 'RTMDet' and preset != 'static':
        assert (f'initialised {len(dynamic)} dynamic convs from dense '
                'weights') in log
