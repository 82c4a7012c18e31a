# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Every COCO config in ``configs/``: it loads, its model builds with the
intended backbone, and it trains with the published 1x recipe (temperature
fixed at 1, no annealing)."""
import glob
import os.path as osp
from typing import Any, Dict, Iterator

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO, 'configs')
CONFIG_FILES = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))

DETECTORS = ('faster_rcnn', 'mask_rcnn')
# config-name prefix -> backbone preset ('' = static, dcn: mmcv layers).
R50_VARIANTS = {
    '': 'static',
    'condconv8x_': 'condconv8x',
    'dyconv4x_': 'dyconv4x',
    'odconv_': 'odconv1x',
    'odconv4x_': 'odconv4x',
    'dcn_': 'DCN',
    'dcnv2_': 'DCNv2',
}
MBV2_VARIANTS = {k: v for k, v in R50_VARIANTS.items() if 'dcn' not in k}


def _expected() -> Dict[str, tuple]:
    names = {}
    for det in DETECTORS:
        for prefix, preset in R50_VARIANTS.items():
            names[f'{prefix}{det}_r50_fpn_1x.py'] = (det, 'r50', preset)
        for prefix, preset in MBV2_VARIANTS.items():
            names[f'{prefix}{det}_mbv2_fpn_1x.py'] = (det, 'mbv2', preset)
    return names


EXPECTED = _expected()

# Backbone parameter counts (no classifier) from the official code; see
# FACTS.md. CondConv / DyConv are pinned by the paper's "extra parameters
# over ResNet-50" (+90.0M, +75.3M, one decimal).
EXACT_BACKBONE_PARAMS = {
    ('r50', 'static'): 23_508_032,
    ('r50', 'odconv1x'): 26_586_112,
    ('r50', 'odconv4x'): 88_621_888,
    ('mbv2', 'static'): 2_223_872,
    ('mbv2', 'odconv1x'): 3_659_185,
    ('mbv2', 'odconv4x'): 10_231_149,
}
R50_EXTRA_PARAMS = {'condconv8x': 90.0e6, 'dyconv4x': 75.3e6}

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


def test_exactly_the_expected_configs():
    names = {osp.basename(p) for p in CONFIG_FILES}
    assert names == set(EXPECTED), (
        f'missing: {sorted(set(EXPECTED) - names)}, '
        f'unexpected: {sorted(names - set(EXPECTED))}')
    assert len(names) == 24


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


def _check_backbone_cfg(cfg: Config, arch: str, preset: str) -> None:
    backbone = cfg.model.backbone
    dynamic = preset not in ('static', 'DCN', 'DCNv2')
    # every backbone is ours (strict weight loading); DCN is mmcv's
    assert backbone.preset == ('static' if not dynamic else preset)
    assert backbone.temperature == 1.0
    if arch == 'r50':
        assert backbone.type == 'DynamicResNet'
        assert backbone.depth == 50
        assert backbone.frozen_stages == 1
        assert backbone.norm_eval is True
        assert backbone.style == 'pytorch'
        assert tuple(backbone.out_indices) == (0, 1, 2, 3)
        assert list(cfg.model.neck.in_channels) == [256, 512, 1024, 2048]
        static_ckpt = 'torchvision://resnet50'
    else:
        assert backbone.type == 'DynamicMobileNetV2'
        assert backbone.widen_factor == 1.0
        assert tuple(backbone.out_indices) == (1, 2, 4, 7)
        assert list(cfg.model.neck.in_channels) == [24, 32, 96, 1280]
        static_ckpt = 'open-mmlab://mmdet/mobilenet_v2'
    if dynamic:
        arch_name = 'resnet50' if arch == 'r50' else 'mobilenetv2-1.0'
        assert _plain(backbone.init_cfg) == dict(
            type='Pretrained',
            checkpoint=f'checkpoints/{preset}_{arch_name}_in1k.pth')
    else:
        assert _plain(backbone.init_cfg) == dict(
            type='Pretrained', checkpoint=static_ckpt)
    if preset in ('DCN', 'DCNv2'):
        assert _plain(backbone.dcn) == dict(
            type=preset, deform_groups=1, fallback_on_stride=False)
        assert tuple(backbone.stage_with_dcn) == (False, True, True, True)
    else:
        assert backbone.get('dcn') is None


@pytest.mark.parametrize(
    'path', CONFIG_FILES, ids=[osp.basename(p) for p in CONFIG_FILES])
def test_config(path: str):
    from mmdet.registry import MODELS

    from dynconv_mmdet.models.layers import (CondConv2d, DyConv2d, ODConv2d,
                                             get_temperatures)

    name = osp.basename(path)
    det, arch, preset = EXPECTED[name]
    cfg = Config.fromfile(path)

    assert _plain(cfg.custom_imports) == dict(
        imports=['dynconv_mmdet'], allow_failed_imports=False)
    _check_schedule(cfg)
    for node in _walk(_plain(cfg._cfg_dict)):
        if isinstance(node, dict):
            assert node.get('type') != 'TemperatureAnnealingHook'
            assert not node.get('find_unused_parameters', False)
        if isinstance(node, str):
            assert 'path/to' not in node
    assert cfg.model.type == ('FasterRCNN'
                              if det == 'faster_rcnn' else 'MaskRCNN')
    _check_backbone_cfg(cfg, arch, preset)

    model = MODELS.build(cfg.model)
    backbone = model.backbone
    num_params = sum(p.numel() for p in backbone.parameters())
    if (arch, preset) in EXACT_BACKBONE_PARAMS:
        assert num_params == EXACT_BACKBONE_PARAMS[(arch, preset)]
    elif arch == 'r50' and preset in R50_EXTRA_PARAMS:
        extra = num_params - EXACT_BACKBONE_PARAMS[('r50', 'static')]
        assert abs(extra - R50_EXTRA_PARAMS[preset]) < 0.05e6, extra

    dynamic_types = (CondConv2d, DyConv2d, ODConv2d)
    dynamic = [m for m in backbone.modules() if isinstance(m, dynamic_types)]
    temperatures = get_temperatures(model)
    if preset in ('static', 'DCN', 'DCNv2'):
        assert not dynamic and not temperatures
    else:
        expected_type = {
            'condconv8x': CondConv2d,
            'dyconv4x': DyConv2d,
            'odconv1x': ODConv2d,
            'odconv4x': ODConv2d
        }[preset]
        assert dynamic and all(isinstance(m, expected_type) for m in dynamic)
        if expected_type is not CondConv2d:
            assert len(temperatures) == len(dynamic)
        assert all(t == 1.0 for t in temperatures.values()), temperatures
    if preset in ('DCN', 'DCNv2'):
        from mmcv.ops import DeformConv2dPack, ModulatedDeformConv2dPack
        layer_type = (
            DeformConv2dPack if preset == 'DCN' else ModulatedDeformConv2dPack)
        assert MODELS.get(preset) is layer_type
        for stage, has_dcn in zip(('layer1', 'layer2', 'layer3', 'layer4'),
                                  (False, True, True, True)):
            convs = [blk.conv2 for blk in getattr(backbone, stage)]
            assert all(isinstance(c, layer_type) == has_dcn for c in convs)
    if det == 'mask_rcnn':
        assert model.roi_head.with_mask
    del model
