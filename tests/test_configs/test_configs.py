# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Every model of the zoo (``configs/metafile.yml``): its config loads, its
model builds with the intended backbone, and the Faster / Mask R-CNN configs
train with the published 1x recipe (each family's fixed detection
temperature, no annealing) or, where the metafile names the ``Recipe``
``KernelWarehouse release`` or ``FDConv release``, with that release's COCO
recipe (AdamW, its weight decay exemptions, multi-scale crops, its frozen
parts; FDConv's also its LR steps, padding and mixed precision).

The list of configs and what each should build come from the metafile, the
dynamic convs each preset places from the backbone's ``presets`` table, the
KernelWarehouse layouts from the release (``tests/data/kernel_warehouse``).
"""
import glob
import json
import os.path as osp
from typing import Any, Iterator, Optional

import pytest
import yaml
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs')
with open(osp.join(CONFIG_DIR, 'metafile.yml'), encoding='utf-8') as _f:
    ZOO = yaml.safe_load(_f)['Models']
IDS = [m['Name'] for m in ZOO]

# Detector name in the metafile -> mmdet's model type.
DETECTOR_TYPES = {
    'Faster R-CNN': 'FasterRCNN',
    'Mask R-CNN': 'MaskRCNN',
    'RTMDet': 'RTMDet',
    'YOLOX': 'YOLOX'
}
# The R-CNN backbones: mmdet's settings, their ImageNet checkpoints.
RCNN_BACKBONES = {
    'ResNet-50':
    dict(arch='resnet50', static_checkpoint='torchvision://resnet50'),
    'MobileNetV2 1.0':
    dict(
        arch='mobilenetv2-1.0',
        static_checkpoint='open-mmlab://mmdet/mobilenet_v2'),
}

# Backbone parameter counts (no classifier) from the official code; see
# FACTS.md. CondConv / DyConv are pinned by the paper's "extra parameters
# over ResNet-50" (+90.0M, +75.3M, one decimal).
EXACT_BACKBONE_PARAMS = {
    ('ResNet-50', 'static'): 23_508_032,
    ('ResNet-50', 'odconv1x'): 26_586_112,
    ('ResNet-50', 'odconv4x'): 88_621_888,
    ('MobileNetV2 1.0', 'static'): 2_223_872,
    ('MobileNetV2 1.0', 'odconv1x'): 3_659_185,
    ('MobileNetV2 1.0', 'odconv4x'): 10_231_149,
    ('ResNet-50', 'fdconv'): 27_155_152,  # 23,508,032 + 3,647,120
}
R50_EXTRA_PARAMS = {'condconv8x': 90.0e6, 'dyconv4x': 75.3e6}
# Presets whose configs start from the dense ImageNet model (the family's
# init_from_dense at load time, the release's own start): FDConv, from
# torchvision's ResNet-50 as the FDConv release's configs.
DENSE_START_PRESETS = {'fdconv'}

# The release's KernelWarehouse models built with its own code: parameters
# (ImageNet model and classifier) and the KW convs, named as in ours.
with open(
        osp.join(REPO, 'tests', 'data', 'kernel_warehouse', 'backbones.json'),
        encoding='utf-8') as _f:
    KW_RELEASE = json.load(_f)
KW_RELEASE_ARCHS = {
    'ResNet-50': ('resnet', '50'),
    'MobileNetV2 1.0': ('mobilenet_v2', '1.0')
}


def _kw_release_model(backbone: str, preset: str) -> Optional[dict]:
    """The release's model for a metafile backbone and preset, if any."""
    family, size = KW_RELEASE_ARCHS[backbone]
    return KW_RELEASE[family].get(f'{size}_{preset}')


SCHEDULE_1X = dict(
    train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1),
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
    param_scheduler=[
        dict(
            type='LinearLR',
            start_factor=0.001,
            by_epoch=False,
            begin=0,
            end=500),
        dict(
            type='MultiStepLR',
            begin=0,
            end=12,
            by_epoch=True,
            milestones=[8, 11],
            gamma=0.1)
    ],
    auto_scale_lr=dict(enable=False, base_batch_size=16))

# The KernelWarehouse release's COCO recipe (its
# detection/configs/kernelwarehouse/*/mask_rcnn_*_adamw_1x_coco.py, mmdet
# 2.11), in mmdet 3.x form: the metafile's `Recipe: KernelWarehouse release`.
RELEASE_RECIPE = 'KernelWarehouse release'
RELEASE_OPTIMIZER = dict(
    type='AdamW', lr=0.0001, betas=[0.9, 0.999], weight_decay=0.05)
# Its paramwise custom_keys (decay_mult 0), matched as substrings of the
# full parameter names by mmcv 1.x as by mmengine.
RELEASE_NO_DECAY_KEYS = ('absolute_pos_embed', 'relative_position_bias_table',
                         'norm')
RELEASE_PARAMWISE = dict(custom_keys={'attention.norm1': dict(decay_mult=0.0)})
_SCALES = [[short, 1333] for short in range(480, 801, 32)]
RELEASE_TRAIN_PIPELINE = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[[
            dict(type='RandomChoiceResize', scales=_SCALES, keep_ratio=True)
        ],
                    [
                        dict(
                            type='RandomChoiceResize',
                            scales=[[400, 1333], [500, 1333], [600, 1333]],
                            keep_ratio=True),
                        dict(
                            type='RandomCrop',
                            crop_type='absolute_range',
                            crop_size=[384, 600],
                            allow_negative_crop=True),
                        dict(
                            type='RandomChoiceResize',
                            scales=_SCALES,
                            keep_ratio=True)
                    ]]),
    dict(type='PackDetInputs')
]
# What the release's frozen_stages=1 freezes, as our frozen_stages and the
# backbone parameters it freezes: ResNet's stem and layer1; MobileNetV2's
# features[0..3] (its stage_idx[1] = 3), i.e. our stem, layer1 and layer2.
RELEASE_FROZEN = {
    'ResNet-50': (1, ('conv1.', 'bn1.', 'layer1.')),
    'MobileNetV2 1.0': (2, ('conv1.', 'layer1.', 'layer2.')),
}
RELEASE_STATIC_CHECKPOINTS = {
    'ResNet-50': 'checkpoints/resnet50_kw-recipe_in1k.pth',
    'MobileNetV2 1.0': 'checkpoints/mobilenetv2-1.0_kw-recipe_in1k.pth',
}

# The FDConv release's Mask R-CNN recipe (its FDConv_detection/configs/
# mask_rcnn/mask_rcnn_r50_fpn_1x_coco_adamw_FDConv.py, mmdet 2.28.1): the
# metafile's `Recipe: FDConv release`. The optimizer, exemption keys and
# pipeline are the KernelWarehouse release's; its 'norm' key matches the
# LayerNorm of FDConv's local attention, `KSM_Local.norm`.
FDCONV_RECIPE = 'FDConv release'
FDCONV_RECIPE_SUFFIX = '_release-recipe_adamw_1x'
FDCONV_PARAMWISE = dict(custom_keys={'KSM_Local.norm': dict(decay_mult=0.0)})
FDCONV_PARAM_SCHEDULER = [
    SCHEDULE_1X['param_scheduler'][0],
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[10, 11],
        gamma=0.1)
]


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _walk(value)


def _plain(node: Any) -> Any:
    """Config values as plain dicts / lists for comparisons."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    return node


def test_exactly_the_listed_configs():
    names = {
        osp.relpath(p, REPO)
        for p in glob.glob(osp.join(CONFIG_DIR, '*.py'))
    }
    listed = {m['Config'] for m in ZOO}
    assert names == listed, (f'missing: {sorted(listed - names)}, '
                             f'unexpected: {sorted(names - listed)}')
    assert len(ZOO) == len(listed)
    # one config per detector, backbone, preset, DCN and recipe
    keys = [(m['Metadata']['Detector'], m['Metadata']['Backbone'],
             m['Metadata']['Backbone Preset'],
             m['Metadata'].get('Backbone DCN'), m['Metadata'].get('Recipe'))
            for m in ZOO]
    assert len(keys) == len(set(keys))


def test_release_recipe_configs():
    """The KW release's recipe for the static, ODConv 4x and KW 1x / 4x
    R-50 and MobileNetV2 Mask R-CNN, FDConv's for its R-50 Mask R-CNN, each
    beside its SGD config."""
    recipes = [m for m in ZOO if m['Metadata'].get('Recipe')]
    assert {m['Metadata']['Recipe']
            for m in recipes} == {RELEASE_RECIPE, FDCONV_RECIPE}
    fdconv = [m for m in recipes if m['Metadata']['Recipe'] == FDCONV_RECIPE]
    assert [(m['Metadata']['Detector'], m['Metadata']['Backbone'],
             m['Metadata']['Backbone Preset'])
            for m in fdconv] == [('Mask R-CNN', 'ResNet-50', 'fdconv')]
    names = {m['Name'] for m in ZOO}
    for model in fdconv:
        # named apart from the zoo's 1x and from the KW recipe's configs
        assert model['Name'].endswith(FDCONV_RECIPE_SUFFIX)
        assert model['Name'].replace(FDCONV_RECIPE_SUFFIX, '_1x') in names
    release = [m for m in recipes if m['Metadata']['Recipe'] == RELEASE_RECIPE]
    got = {(m['Metadata']['Detector'], m['Metadata']['Backbone'],
            m['Metadata']['Backbone Preset'])
           for m in release}
    assert got == {('Mask R-CNN', backbone, preset)
                   for backbone in RCNN_BACKBONES
                   for preset in ('static', 'odconv4x', 'kw1x', 'kw4x')}
    for model in release:
        assert model['Name'].endswith('_adamw_1x')
        assert not model['Name'].endswith(FDCONV_RECIPE_SUFFIX)
        assert model['Name'].replace('_adamw_1x', '_1x') in names


@pytest.fixture(scope='module', autouse=True)
def _registries():
    from mmdet.utils import register_all_modules

    import dynconv_mmdet  # noqa: F401
    register_all_modules(init_default_scope=True)


def _check_schedule(cfg: Config) -> None:
    assert _plain(cfg.train_cfg) == SCHEDULE_1X['train_cfg']
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert _plain(cfg.optim_wrapper.optimizer) == SCHEDULE_1X['optimizer']
    assert 'clip_grad' not in cfg.optim_wrapper
    assert _plain(cfg.param_scheduler) == SCHEDULE_1X['param_scheduler']
    assert _plain(cfg.auto_scale_lr) == SCHEDULE_1X['auto_scale_lr']
    # 16 images per iteration = 8 GPUs x 2
    assert cfg.train_dataloader.batch_size == 2


def _check_rcnn_backbone_cfg(cfg: Config, meta: dict) -> None:
    backbone = cfg.model.backbone
    preset = meta['Backbone Preset']
    dcn = meta.get('Backbone DCN')
    dynamic = preset != 'static'
    # every backbone is ours (strict weight loading); DCN is mmcv's
    assert backbone.preset == preset
    # each family's fixed detection temperature (no annealing)
    assert backbone.temperature is None
    if meta['Backbone'] == 'ResNet-50':
        assert backbone.type == 'DynamicResNet'
        assert backbone.depth == 50
        assert backbone.frozen_stages == 1
        assert backbone.norm_eval is True
        assert backbone.style == 'pytorch'
        assert tuple(backbone.out_indices) == (0, 1, 2, 3)
        assert list(cfg.model.neck.in_channels) == [256, 512, 1024, 2048]
    else:
        assert meta['Backbone'] == 'MobileNetV2 1.0'
        assert backbone.type == 'DynamicMobileNetV2'
        assert backbone.widen_factor == 1.0
        assert tuple(backbone.out_indices) == (1, 2, 4, 7)
        assert list(cfg.model.neck.in_channels) == [24, 32, 96, 1280]
    names = RCNN_BACKBONES[meta['Backbone']]
    if preset in DENSE_START_PRESETS:
        assert _plain(backbone.init_cfg) == dict(
            type='Pretrained', checkpoint=names['static_checkpoint'])
    elif dynamic:
        assert _plain(backbone.init_cfg) == dict(
            type='Pretrained',
            checkpoint=f'checkpoints/{preset}_{names["arch"]}_in1k.pth')
    else:
        assert _plain(backbone.init_cfg) == dict(
            type='Pretrained', checkpoint=names['static_checkpoint'])
    if dcn is not None:
        assert not dynamic
        assert _plain(backbone.dcn) == dict(
            type=dcn, deform_groups=1, fallback_on_stride=False)
        assert tuple(backbone.stage_with_dcn) == (False, True, True, True)
    else:
        assert backbone.get('dcn') is None
    # frozen stages freeze the shared state (KW cells) they use
    assert backbone.get('freeze_shared_state', True) is True


def _without(node: dict, *keys: str) -> dict:
    return {k: v for k, v in node.items() if k not in keys}


def _check_release_recipe(cfg: Config, meta: dict, sgd_config: str) -> None:
    """The release's recipe, and nothing else changed from the SGD config
    of the same model (``sgd_config``)."""
    assert meta['Detector'] == 'Mask R-CNN'
    # the release's schedule_1x is mmdet's 1x: same warm-up, steps, epochs
    assert _plain(cfg.train_cfg) == SCHEDULE_1X['train_cfg']
    assert _plain(cfg.param_scheduler) == SCHEDULE_1X['param_scheduler']
    assert _plain(cfg.auto_scale_lr) == SCHEDULE_1X['auto_scale_lr']
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert _plain(cfg.optim_wrapper.optimizer) == RELEASE_OPTIMIZER
    assert _plain(cfg.optim_wrapper.paramwise_cfg) == RELEASE_PARAMWISE
    assert 'clip_grad' not in cfg.optim_wrapper
    assert cfg.train_dataloader.batch_size == 2
    assert _plain(cfg.train_dataloader.dataset.pipeline) == \
        RELEASE_TRAIN_PIPELINE

    backbone = cfg.model.backbone
    preset = meta['Backbone Preset']
    frozen_stages, _ = RELEASE_FROZEN[meta['Backbone']]
    assert backbone.frozen_stages == frozen_stages
    assert backbone.norm_eval is True
    assert backbone.freeze_shared_state is False
    assert backbone.temperature is None
    # the release's KW ResNet trains with drop path 0.1 on every block; its
    # static ResNet, its MobileNetV2 and ODConv's backbones have none
    kw_resnet = (meta['Backbone'] == 'ResNet-50' and preset.startswith('kw'))
    assert backbone.get('drop_path_rate', 0.0) == (0.1 if kw_resnet else 0.0)
    if preset == 'static':
        checkpoint = RELEASE_STATIC_CHECKPOINTS[meta['Backbone']]
    else:
        arch = RCNN_BACKBONES[meta['Backbone']]['arch']
        checkpoint = f'checkpoints/{preset}_{arch}_in1k.pth'
    assert _plain(backbone.init_cfg) == dict(
        type='Pretrained', checkpoint=checkpoint)

    # everything else is the SGD config's: model, data, evaluation, hooks
    ours = _plain(cfg.to_dict())
    theirs = _plain(Config.fromfile(osp.join(REPO, sgd_config)).to_dict())
    recipe = ('optim_wrapper', 'train_pipeline', 'multi_scales', 'crop_scales')
    ours, theirs = _without(ours, *recipe), _without(theirs, *recipe)
    for side in (ours, theirs):
        side['model']['backbone'] = _without(side['model']['backbone'],
                                             'frozen_stages',
                                             'freeze_shared_state', 'init_cfg',
                                             'drop_path_rate')
        side['train_dataloader']['dataset'] = _without(
            side['train_dataloader']['dataset'], 'pipeline')
    assert ours == theirs


def _check_fdconv_release_recipe(cfg: Config, meta: dict,
                                 sgd_config: str) -> None:
    """The FDConv release's recipe, and nothing else changed from the SGD
    config of the same model (``sgd_config``)."""
    assert meta['Detector'] == 'Mask R-CNN'
    assert _plain(cfg.train_cfg) == SCHEDULE_1X['train_cfg']
    assert _plain(cfg.param_scheduler) == FDCONV_PARAM_SCHEDULER
    assert _plain(cfg.auto_scale_lr) == SCHEDULE_1X['auto_scale_lr']
    # mixed precision, dynamic loss scale (AmpOptimWrapper's default)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.get('loss_scale', 'dynamic') == 'dynamic'
    assert _plain(cfg.optim_wrapper.optimizer) == RELEASE_OPTIMIZER
    assert _plain(cfg.optim_wrapper.paramwise_cfg) == FDCONV_PARAMWISE
    assert 'clip_grad' not in cfg.optim_wrapper
    assert cfg.train_dataloader.batch_size == 2
    assert _plain(cfg.train_dataloader.dataset.pipeline) == \
        RELEASE_TRAIN_PIPELINE
    assert cfg.model.data_preprocessor.pad_size_divisor == 64
    assert cfg.model.backbone.temperature is None
    # the backbone is the SGD config's (the release builds the same one)
    _check_rcnn_backbone_cfg(cfg, meta)

    # everything else is the SGD config's: model, data, evaluation, hooks
    ours = _plain(cfg.to_dict())
    theirs = _plain(Config.fromfile(osp.join(REPO, sgd_config)).to_dict())
    recipe = ('optim_wrapper', 'param_scheduler', 'train_pipeline',
              'multi_scales', 'crop_scales')
    ours, theirs = _without(ours, *recipe), _without(theirs, *recipe)
    for side in (ours, theirs):
        side['model']['data_preprocessor'] = _without(
            side['model']['data_preprocessor'], 'pad_size_divisor')
        side['train_dataloader']['dataset'] = _without(
            side['train_dataloader']['dataset'], 'pipeline')
    assert ours == theirs


def _check_fdconv_release_optimizer(model, cfg: Config) -> None:
    """The decay-exempt parameters are those the release's custom_keys
    select: the local attention LayerNorm of every FDConv conv, the frozen
    first stage's included (its attention trains, as in the release);
    everything else trains with lr 1e-4 and weight decay 0.05. Frozen: the
    stem and the first stage but their attention and FBM."""
    from mmengine.optim import build_optim_wrapper

    from dynconv_mmdet.models.layers import FDConv2d

    # AmpOptimWrapper needs a CUDA device; the parameter groups are the
    # constructor's, whatever the wrapper
    optim_cfg = cfg.optim_wrapper.copy()
    optim_cfg.type = 'OptimWrapper'
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    decay = {}
    for group in optim_wrapper.optimizer.param_groups:
        for param in group['params']:
            if param.requires_grad:
                assert group['lr'] == RELEASE_OPTIMIZER['lr']
                decay[names[id(param)]] = group['weight_decay']
    assert set(decay) == trainable
    exempt = {n for n, wd in decay.items() if wd == 0.0}
    assert all(wd == RELEASE_OPTIMIZER['weight_decay']
               for n, wd in decay.items() if n not in exempt)
    # the release's keys on our names select the same parameters
    assert exempt == {
        n
        for n in trainable if any(k in n for k in RELEASE_NO_DECAY_KEYS)
    }
    convs = [
        n for n, m in model.backbone.named_modules()
        if isinstance(m, FDConv2d) and m.dense_reason is None
    ]
    assert len(convs) == 48  # every ResNet-50 bottleneck conv
    assert exempt == {
        f'backbone.{conv}.KSM_Local.norm.{w}'
        for conv in convs
        for w in ('weight', 'bias')
    }
    backbone = {
        n[len('backbone.'):]
        for n in names.values() if n.startswith('backbone.')
    }
    frozen = {n for n in backbone if 'backbone.' + n not in trainable}
    assert frozen == {
        n
        for n in backbone
        if n.startswith(('conv1.', 'bn1.', 'layer1.')) and not any(
            part in n for part in ('.KSM_Global.', '.KSM_Local.', '.FBM.'))
    }
    assert all(
        n.startswith('backbone.') for n in set(names.values()) - trainable)


def _check_release_optimizer(model, cfg: Config, meta: dict) -> None:
    """The decay-exempt parameters are those the release's custom_keys
    select: the KW attention's norm1 of every KW conv of the release's
    model that trains (none for static and ODConv backbones); everything
    else trains with lr 1e-4 and weight decay 0.05. Frozen: what the
    release freezes, never a KW warehouse."""
    from mmengine.optim import build_optim_wrapper
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    decay = {}
    for group in optim_wrapper.optimizer.param_groups:
        for param in group['params']:
            if param.requires_grad:
                assert group['lr'] == RELEASE_OPTIMIZER['lr']
                decay[names[id(param)]] = group['weight_decay']
    assert set(decay) == trainable
    exempt = {n for n, wd in decay.items() if wd == 0.0}
    assert all(wd == RELEASE_OPTIMIZER['weight_decay']
               for n, wd in decay.items() if n not in exempt)
    # the release's keys on our names select the same parameters
    assert exempt == {
        n
        for n in trainable if any(k in n for k in RELEASE_NO_DECAY_KEYS)
    }
    release = _kw_release_model(meta['Backbone'], meta['Backbone Preset'])
    expected = set()
    if release is not None:
        norms = {
            f'backbone.{conv[0]}.attention.norm1.{w}'
            for conv in release['convs']
            for w in ('weight', 'bias')
        }
        assert norms <= set(names.values())
        expected = norms & trainable
        assert expected
    assert exempt == expected

    _, prefixes = RELEASE_FROZEN[meta['Backbone']]
    backbone = {
        n[len('backbone.'):]
        for n in names.values() if n.startswith('backbone.')
    }
    frozen = {n for n in backbone if 'backbone.' + n not in trainable}
    assert frozen == {n for n in backbone if n.startswith(prefixes)}
    assert all(
        n.startswith('backbone.') for n in set(names.values()) - trainable)


@pytest.mark.parametrize('zoo_model', ZOO, ids=IDS)
def test_config(zoo_model: dict):
    from mmdet.registry import MODELS

    from dynconv_mmdet.models.layers import DynamicConv2d, get_temperatures
    from dynconv_mmdet.models.layers.conv_types import get_conv_class

    meta = zoo_model['Metadata']
    arch, preset = meta['Backbone'], meta['Backbone Preset']
    dcn = meta.get('Backbone DCN')
    cfg = Config.fromfile(osp.join(REPO, zoo_model['Config']))

    assert _plain(cfg.custom_imports) == dict(
        imports=['dynconv_mmdet'], allow_failed_imports=False)
    is_rcnn = meta['Detector'] in ('Faster R-CNN', 'Mask R-CNN')
    recipe = meta.get('Recipe')
    assert recipe in (None, RELEASE_RECIPE, FDCONV_RECIPE)
    if is_rcnn:
        assert meta['Epochs'] == 12
    if recipe == RELEASE_RECIPE:
        _check_release_recipe(cfg, meta,
                              zoo_model['Config'].replace('_adamw_1x', '_1x'))
    elif recipe == FDCONV_RECIPE:
        _check_fdconv_release_recipe(
            cfg, meta, zoo_model['Config'].replace(FDCONV_RECIPE_SUFFIX,
                                                   '_1x'))
    elif is_rcnn:
        _check_schedule(cfg)
        _check_rcnn_backbone_cfg(cfg, meta)
    assert cfg.train_cfg.max_epochs == meta['Epochs']
    # the recipes are written for 8 GPUs
    assert 8 * cfg.train_dataloader.batch_size == meta['Batch Size']
    for node in _walk(_plain(cfg._cfg_dict)):
        if isinstance(node, dict):
            assert node.get('type') != 'TemperatureAnnealingHook'
            assert not node.get('find_unused_parameters', False)
        if isinstance(node, str):
            assert 'path/to' not in node
    assert cfg.model.type == DETECTOR_TYPES[meta['Detector']]
    assert cfg.model.backbone.preset == preset

    model = MODELS.build(cfg.model)
    backbone = model.backbone
    num_params = sum(p.numel() for p in backbone.parameters())
    assert num_params == meta['Backbone Parameters']
    if (arch, preset) in EXACT_BACKBONE_PARAMS and dcn is None:
        assert num_params == EXACT_BACKBONE_PARAMS[(arch, preset)]
    elif (arch in KW_RELEASE_ARCHS
          and _kw_release_model(arch, preset) is not None):
        # the release's ImageNet model without its classifier
        release = _kw_release_model(arch, preset)
        assert num_params == release['params'] - release['classifier']
    elif arch == 'ResNet-50' and preset in R50_EXTRA_PARAMS:
        extra = num_params - EXACT_BACKBONE_PARAMS[('ResNet-50', 'static')]
        assert abs(extra - R50_EXTRA_PARAMS[preset]) < 0.05e6, extra

    # the preset table says which family the backbone places
    assert preset in backbone.presets
    dynamic = [m for m in backbone.modules() if isinstance(m, DynamicConv2d)]
    temperatures = get_temperatures(model)
    if preset == 'static':
        assert not dynamic and not temperatures
    else:
        expected_type = get_conv_class(
            backbone.presets[preset]['conv_cfg']['type'])
        assert dynamic and all(isinstance(m, expected_type) for m in dynamic)
        if expected_type.temperature_default is not None:
            assert len(temperatures) == len(dynamic)
        assert all(t == expected_type.temperature_default
                   for t in temperatures.values()), temperatures
    if dcn is not None:
        from mmcv.ops import DeformConv2dPack, ModulatedDeformConv2dPack
        layer_type = (
            DeformConv2dPack if dcn == 'DCN' else ModulatedDeformConv2dPack)
        assert MODELS.get(dcn) is layer_type
        for stage, has_dcn in zip(('layer1', 'layer2', 'layer3', 'layer4'),
                                  (False, True, True, True)):
            convs = [blk.conv2 for blk in getattr(backbone, stage)]
            assert all(isinstance(c, layer_type) == has_dcn for c in convs)
    if meta['Detector'] == 'Mask R-CNN':
        assert model.roi_head.with_mask
    if recipe == RELEASE_RECIPE:
        _check_release_optimizer(model, cfg, meta)
    elif recipe == FDCONV_RECIPE:
        _check_fdconv_release_optimizer(model, cfg)
    del model
