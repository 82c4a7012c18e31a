# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The real-time configs (RTMDet-tiny, YOLOX-S) are mmdet's own recipes:
the static baselines differ from mmdet's configs only in the backbone type
(ours, at preset ``static``) and the plugin import, the dynamic variants
from their baseline only in the preset. So they keep mmdet's EMA
(``ExpMomentumEMA`` with averaged buffers), schedules and data, and the
backbone's norm (RTMDet's SyncBN) reaches the attentions."""
import os.path as osp
from typing import Any

import mmdet
import pytest
import torch.nn as nn
import yaml
from mmdet.registry import HOOKS
from mmengine.config import Config
from torch.nn.modules.batchnorm import _BatchNorm

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# metafile Detector -> mmdet's config folder
MMDET_FOLDERS = {'RTMDet': 'rtmdet', 'YOLOX': 'yolox'}

with open(osp.join(REPO, 'configs', 'metafile.yml'), encoding='utf-8') as f:
    ZOO = [
        m for m in yaml.safe_load(f)['Models']
        if m['Metadata']['Detector'] in MMDET_FOLDERS
    ]


def _static(detector: str) -> dict:
    return next(m for m in ZOO if m['Metadata']['Detector'] == detector
                and m['Metadata']['Backbone Preset'] == 'static')


def _plain(node: Any) -> Any:
    """Config values as plain dicts / lists, without the ``_scope_`` keys
    that inheriting from ``mmdet::`` adds."""
    if isinstance(node, Config):
        node = node.to_dict()
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    return node


def test_both_detectors_ship_the_same_presets():
    """The real-time configs cover the same presets for RTMDet and YOLOX,
    each a preset of the detector's backbone (a preset without configs is
    still built by ``test_every_preset.py`` and named with
    ``model.backbone.preset``)."""
    from mmdet.registry import MODELS
    shipped = {}
    for detector in MMDET_FOLDERS:
        backbone = Config.fromfile(
            osp.join(REPO,
                     _static(detector)['Config'])).model.backbone.type
        shipped[detector] = {
            m['Metadata']['Backbone Preset']
            for m in ZOO if m['Metadata']['Detector'] == detector
        }
        assert shipped[detector] <= set(MODELS.get(backbone).presets)
    assert len({frozenset(p) for p in shipped.values()}) == 1, shipped
    assert len(next(iter(shipped.values()))) > 1


@pytest.mark.parametrize('detector', list(MMDET_FOLDERS))
def test_static_baseline_is_mmdets_config(detector):
    static = _static(detector)
    ours = _plain(Config.fromfile(osp.join(REPO, static['Config'])))
    theirs = _plain(
        Config.fromfile(
            osp.join(
                osp.dirname(mmdet.__file__), '.mim', 'configs',
                MMDET_FOLDERS[detector], osp.basename(static['Config']))))
    assert ours.pop('custom_imports') == dict(
        imports=['dynconv_mmdet'], allow_failed_imports=False)
    # checkpoints read safely and loaded strictly (SafeLoadRunner)
    assert ours.pop('runner_type') == 'SafeLoadRunner'
    assert ours.pop('strict_load') is True
    backbone, mmdet_backbone = ours['model'].pop(
        'backbone'), theirs['model'].pop('backbone')
    assert backbone.pop('type') == 'Dynamic' + mmdet_backbone.pop('type')
    assert backbone.pop('preset') == 'static'
    assert backbone.pop('temperature') is None
    assert backbone == mmdet_backbone
    # mmdet's default hooks with their options; the project's may replace
    # one by a subclass (e.g. atomic checkpoint writes) or add their own
    hooks, mmdet_hooks = ours.pop('default_hooks'), theirs.pop('default_hooks')
    for name, hook in mmdet_hooks.items():
        mine = dict(hooks[name])
        assert issubclass(
            HOOKS.get(mine.pop('type')), HOOKS.get(hook.pop('type')))
        assert mine == hook, name
    assert ours == theirs
    # mmdet's EMA over parameters and buffers
    ema = [h for h in ours['custom_hooks'] if h['type'] == 'EMAHook']
    assert len(ema) == 1 and ema[0]['ema_type'] == 'ExpMomentumEMA'
    assert ema[0]['update_buffers'] is True
    assert ours['train_cfg']['max_epochs'] == static['Metadata']['Epochs']


@pytest.mark.parametrize('zoo_model', ZOO, ids=[m['Name'] for m in ZOO])
def test_dynamic_variant_changes_only_the_preset(zoo_model):
    from mmdet.registry import MODELS

    from dynconv_mmdet.models.layers import DynamicConv2d
    from dynconv_mmdet.models.layers.conv_types import get_conv_class
    meta = zoo_model['Metadata']
    cfg = Config.fromfile(osp.join(REPO, zoo_model['Config']))
    ours = _plain(cfg)
    static = _plain(
        Config.fromfile(osp.join(REPO,
                                 _static(meta['Detector'])['Config'])))
    assert ours['model']['backbone'].pop('preset') == meta['Backbone Preset']
    static['model']['backbone'].pop('preset')
    assert ours == static

    # the backbone as the config builds it (its checkpoint is not read here)
    backbone = MODELS.build(cfg.model.backbone)
    norm = cfg.model.backbone.norm_cfg
    if meta['Detector'] == 'RTMDet':
        assert norm == dict(type='SyncBN')
        assert backbone.pretrained_arch == 'cspnext'
        assert backbone._pretrained_cfg['prefix'] == 'backbone.'
        assert 'cspnext-tiny_imagenet' in backbone._pretrained_cfg[
            'checkpoint']
    else:  # YOLOX trains from scratch
        assert norm == dict(type='BN', momentum=0.03, eps=0.001)
        assert backbone._pretrained_cfg is None
    dynamic = [m for m in backbone.modules() if isinstance(m, DynamicConv2d)]
    if meta['Backbone Preset'] == 'static':
        assert not dynamic
        return
    family = get_conv_class(
        backbone.presets[meta['Backbone Preset']]['conv_cfg']['type'])
    attention_norms = [
        n for m in dynamic for n in m.modules() if isinstance(n, _BatchNorm)
    ]
    assert bool(attention_norms) == family.takes_backbone_norm
    for bn in attention_norms:
        if meta['Detector'] == 'RTMDet':
            assert isinstance(bn, nn.SyncBatchNorm)
        else:
            assert (type(bn), bn.momentum, bn.eps) == (nn.BatchNorm2d, 0.03,
                                                       0.001)
