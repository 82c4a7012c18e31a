"""Tests of the ImageNet classification project (projects/classification).

Covers the ImageNet configs, whose lists derive from the backbones' preset
tables: the ODConv paper's recipes for every preset of the families it
compares (static, CondConv, DyConv, ODConv) on ResNet-18/50/101 and
MobileNetV2 1.0/0.75/0.5, and the KernelWarehouse release's recipes for the
KW presets it trains and its static baselines. Also the classification heads
(CondConv's 8-expert classifier), the toy dataset, the tools, and the
handover to detection: a tiny ODConv and a tiny KernelWarehouse ResNet-18 are
trained on the toy dataset with the temperature annealed (checked during
training and after a resume in the middle of the annealing), their
checkpoints are exported and initialise a Faster R-CNN whose backbone then
holds exactly the trained weights and computes the same features.
"""
import importlib
import json
import math
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import HOOKS, DefaultScope
from mmengine.runner import Runner

import dynconv_mmdet  # noqa: F401
from dynconv_mmdet.checkpoint import safe_torch_load
from dynconv_mmdet.models import DynamicMobileNetV2, DynamicResNet
from dynconv_mmdet.models.layers import TemperatureMixin, get_temperatures
from dynconv_mmdet.models.layers.conv_types import get_conv_class

REPO_ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

_project = importlib.import_module('projects.classification.dynconv_cls')
CondConvClsHead = _project.CondConvClsHead
DropoutLinearClsHead = _project.DropoutLinearClsHead
generate_toy_imagenet = importlib.import_module(
    'projects.classification.tools.create_toy_imagenet').generate_toy_imagenet
CondConvLinear = importlib.import_module(
    'projects.classification.dynconv_cls.models.heads').CondConvLinear

PROJECT = osp.join(REPO_ROOT, 'projects', 'classification')
CONFIGS = osp.join(PROJECT, 'configs')
TOY_CONFIG = osp.join(CONFIGS, 'toy', 'odconv1x_resnet18-c16_1xb8_toy-32px.py')
KW_TOY_CONFIG = osp.join(CONFIGS, 'toy', 'kw1x_resnet18-c16_1xb8_toy-32px.py')

# What the released KernelWarehouse models build (their code on their json
# settings); tests/test_models/test_backbones/test_kw_backbones.py pins these
# counts against the release's README.
KW_RELEASE = json.load(
    open(
        osp.join(REPO_ROOT, 'tests', 'data', 'kernel_warehouse',
                 'backbones.json')))

#: Architecture -> (backbone class, its size argument and value, the
#: architecture's key in ``KW_RELEASE``).
ARCHS = {
    'resnet18': (DynamicResNet, 'depth', 18, 'resnet'),
    'resnet50': (DynamicResNet, 'depth', 50, 'resnet'),
    'resnet101': (DynamicResNet, 'depth', 101, 'resnet'),
    'mobilenetv2-1.0':
    (DynamicMobileNetV2, 'widen_factor', 1.0, 'mobilenet_v2'),
    'mobilenetv2-0.75':
    (DynamicMobileNetV2, 'widen_factor', 0.75, 'mobilenet_v2'),
    'mobilenetv2-0.5':
    (DynamicMobileNetV2, 'widen_factor', 0.5, 'mobilenet_v2'),
}

# ODConv paper (Li, Zhou and Yao, ICLR 2022): the families it compares, each
# trained with one recipe per architecture; dropout before the FC.
ODCONV_PAPER_FAMILIES = (None, 'CondConv2d', 'DyConv2d', 'ODConv2d')
RESNETS = {'resnet18': 0.1, 'resnet50': 0.2, 'resnet101': 0.2}
MOBILENETS = {
    'mobilenetv2-1.0': 0.2,
    'mobilenetv2-0.75': 0.1,
    'mobilenetv2-0.5': 0.0
}

# KernelWarehouse release (Li and Yao, ICML 2024): the ImageNet models it
# trains (its README's rows), as KW presets of the backbone's table
# (``None``: all of them), plus each architecture's static baseline.
KW_FAMILY = 'KWConv2d'
KW_RELEASED = {
    'resnet18': None,
    'resnet50': ('kw1d2x', 'kw1x', 'kw4x'),
    'mobilenetv2-1.0': None,
    'mobilenetv2-0.5': None,
}
# The release's json overrides of the main.py defaults, per architecture
# (static baseline and KW): drop path, whether mixup / CutMix are on, label
# smoothing. MobileNetV2 KW 1x / 4x keep main.py's smoothing 0.1: their json
# does not set `smoothing: 0` as the static and 1/2x ones do.
KW_JSON = {
    'resnet18':
    dict(
        drop_path=dict(static=0.0, kw1d4x=0.0, kw1d2x=0.0, default=0.1),
        mixup=dict(kw1d4x=False, default=True),
        smoothing=dict(default=0.1)),
    'resnet50':
    dict(
        drop_path=dict(default=0.1),
        mixup=dict(default=True),
        smoothing=dict(default=0.1)),
    'mobilenetv2':
    dict(
        drop_path=dict(default=None),
        mixup=dict(default=False),
        smoothing=dict(kw1x=0.1, kw4x=0.1, default=0.0)),
}
# Static baselines of the release (ImageNet models with classifier; its
# README, millions).
KW_STATIC_README = {
    'resnet18': 11.69,
    'resnet50': 25.56,
    'mobilenetv2-1.0': 3.50,
    'mobilenetv2-0.5': 1.97
}


@pytest.fixture(scope='module', autouse=True)
def single_torch_thread():
    """Tiny CPU workloads: one intra-op thread avoids oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def family(arch: str, preset: str) -> Optional[str]:
    """The conv type a preset of ``arch``'s backbone places (None: static)."""
    layout = ARCHS[arch][0].presets[preset]
    return None if layout is None else layout['conv_cfg']['type']


def config_name(arch: str, preset: str, recipe: str) -> str:
    """``<folder>/[<preset>_]<arch>_<GPUs>xb<batch>[-kw-recipe]_in1k.py``."""
    resnet = arch.startswith('resnet')
    folder = 'resnet' if resnet else 'mobilenet_v2'
    batch = '32xb128' if recipe == 'kw' and resnet else '8xb32'
    prefix = '' if preset == 'static' else f'{preset}_'
    tag = '-kw-recipe' if recipe == 'kw' and preset == 'static' else ''
    return f'{folder}/{prefix}{arch}_{batch}{tag}_in1k.py'


def odconv_paper_configs() -> List[Tuple[str, str, str]]:
    """``(config, arch, preset)`` of every preset of the ODConv paper's
    families on every architecture."""
    return [(config_name(arch, preset, 'odconv'), arch, preset)
            for arch in list(RESNETS) + list(MOBILENETS)
            for preset in ARCHS[arch][0].presets
            if family(arch, preset) in ODCONV_PAPER_FAMILIES]


def kw_recipe_configs() -> List[Tuple[str, str, str]]:
    """``(config, arch, preset)`` of the KernelWarehouse release's models and
    their static baselines."""
    out = []
    for arch, released in KW_RELEASED.items():
        kw = [
            p for p in ARCHS[arch][0].presets if family(arch, p) == KW_FAMILY
        ]
        assert released is None or set(released) <= set(kw)
        for preset in ['static'] + [
                p for p in kw if released is None or p in released
        ]:
            out.append((config_name(arch, preset, 'kw'), arch, preset))
    return out


def all_configs() -> List[str]:
    return [c for c, _, _ in odconv_paper_configs() + kw_recipe_configs()]


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def has_temperature(conv_type: Optional[str]) -> bool:
    return conv_type is not None and getattr(
        get_conv_class(conv_type), 'temperature_schedule', None) is not None


# --------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------
def check_common(cfg: Config, arch: str, preset: str) -> None:
    backbone, head = cfg.model.backbone, cfg.model.head
    assert cfg.default_scope == 'mmpretrain'
    assert 'dynconv_mmdet' in cfg.custom_imports.imports
    assert cfg.model.type == 'ImageClassifier'
    assert backbone.preset == preset
    assert backbone.frozen_stages == -1 and backbone.norm_eval is False
    assert cfg.model.neck.type == 'GlobalAveragePooling'
    assert head.num_classes == 1000
    assert tuple(head.topk) == (1, 5)
    assert cfg.val_evaluator == dict(type='Accuracy', topk=(1, 5))
    assert cfg.test_evaluator == cfg.val_evaluator
    assert cfg.data_preprocessor.to_rgb is True
    backbone_cls, size_arg, size, _ = ARCHS[arch]
    assert backbone.type == f'mmdet.{backbone_cls.__name__}'
    assert backbone[size_arg] == size
    if backbone_cls is DynamicResNet:
        assert tuple(backbone.out_indices) == (3, )
        assert head.in_channels == (512 if size < 50 else 2048)
    else:
        assert tuple(backbone.out_indices) == (7, )
        assert head.in_channels == 1280


def check_plain_pipelines(cfg: Config) -> None:
    """Train RRC 224 + flip, test short side 256 + CC 224."""
    train_pipe = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in train_pipe] == [
        'LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'PackInputs'
    ]
    assert train_pipe[1].scale == 224 and train_pipe[2].prob == 0.5
    test_pipe = cfg.test_dataloader.dataset.pipeline
    assert [t.type for t in test_pipe] == [
        'LoadImageFromFile', 'ResizeEdge', 'CenterCrop', 'PackInputs'
    ]
    assert (test_pipe[1].scale, test_pipe[1].edge) == (256, 'short')
    assert test_pipe[2].crop_size == 224


@pytest.mark.parametrize('name, arch, variant', odconv_paper_configs())
def test_config_follows_odconv_recipe(name, arch, variant):
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    backbone, head = cfg.model.backbone, cfg.model.head
    check_common(cfg, arch, variant)

    # 8 GPUs x 32 images; train RRC 224 + flip, test short side 256 + CC 224
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.auto_scale_lr.base_batch_size == 256
    check_plain_pipelines(cfg)

    optim = cfg.optim_wrapper.optimizer
    assert optim.type == 'SGD' and optim.momentum == 0.9
    assert 'paramwise_cfg' not in cfg.optim_wrapper
    assert cfg.model.get('train_cfg') is None
    if arch in RESNETS:
        assert head.dropout_rate == RESNETS[arch]
        assert (optim.lr, optim.weight_decay) == (0.1, 1e-4)
        assert cfg.train_cfg.max_epochs == 100
        assert cfg.param_scheduler.type == 'MultiStepLR'
        assert list(cfg.param_scheduler.milestones) == [30, 60, 90]
        assert cfg.param_scheduler.gamma == 0.1
    else:
        assert head.dropout_rate == MOBILENETS[arch]
        assert (optim.lr, optim.weight_decay) == (0.05, 4e-5)
        assert cfg.train_cfg.max_epochs == 150
        sched = cfg.param_scheduler
        assert sched.type == 'CosineAnnealingLR'
        assert (sched.T_max, sched.eta_min, sched.end) == (150, 0.0, 150)

    hooks = cfg.get('custom_hooks', [])
    conv_type = family(arch, variant)
    if has_temperature(conv_type):
        assert backbone.temperature == 30.0
        assert hooks == [
            dict(
                type='TemperatureAnnealingHook',
                start=30.0,
                end=1.0,
                epochs=10)
        ]
    else:
        assert not any(h.type == 'TemperatureAnnealingHook' for h in hooks)
    expected_head = ('CondConvClsHead'
                     if conv_type == 'CondConv2d' else 'DropoutLinearClsHead')
    assert head.type == expected_head
    if conv_type == 'CondConv2d':
        assert head.num_experts == 8


def json_value(arch: str, preset: str, key: str):
    table = KW_JSON[arch.split('-')[0]][key]
    return table.get(preset, table['default'])


@pytest.mark.parametrize('name, arch, preset', kw_recipe_configs())
def test_config_follows_the_kernelwarehouse_release(name, arch, preset):
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    backbone, head = cfg.model.backbone, cfg.model.head
    check_common(cfg, arch, preset)
    assert head.get('dropout_rate', 0.0) == 0.0  # main.py's dropout 0
    optim, paramwise = cfg.optim_wrapper.optimizer, \
        cfg.optim_wrapper.paramwise_cfg
    # no weight decay on 1-D parameters and biases (see the test below)
    assert paramwise == dict(bias_decay_mult=0.0, flat_decay_mult=0.0)
    assert backbone.get('drop_path_rate') == json_value(
        arch, preset, 'drop_path')

    # mixup 0.8 or CutMix 1.0 on every batch, 50 / 50; label smoothing
    augments = cfg.model.get('train_cfg')
    if json_value(arch, preset, 'mixup'):
        assert augments == dict(
            augments=[
                dict(type='Mixup', alpha=0.8),
                dict(type='CutMix', alpha=1.0)
            ],
            probs=[0.5, 0.5])
    else:
        assert augments is None
    smoothing = json_value(arch, preset, 'smoothing')
    if smoothing:
        assert head.loss == dict(
            type='LabelSmoothLoss',
            label_smooth_val=smoothing,
            mode='original',
            loss_weight=1.0)
    else:
        assert head.loss == dict(type='CrossEntropyLoss', loss_weight=1.0)

    if arch.startswith('resnet'):
        # 4096 images: lr 4e-3, AdamW, 300 epochs, 20 warm-up, cosine
        assert cfg.train_dataloader.batch_size == 128
        assert cfg.auto_scale_lr.base_batch_size == 4096
        assert optim == dict(
            type='AdamW',
            lr=4e-3,
            betas=(0.9, 0.999),
            eps=1e-8,
            weight_decay=0.05)
        assert cfg.train_cfg.max_epochs == 300
        warmup, cosine = cfg.param_scheduler
        assert (warmup.type, warmup.begin, warmup.end) == ('LinearLR', 0, 20)
        assert (cosine.type, cosine.begin, cosine.end,
                cosine.T_max) == ('CosineAnnealingLR', 20, 300, 280)
        assert cosine.eta_min == 1e-6
        assert warmup.convert_to_iter_based and cosine.convert_to_iter_based
        train_pipe = cfg.train_dataloader.dataset.pipeline
        assert [t.type for t in train_pipe] == [
            'LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip',
            'RandAugment', 'RandomErasing', 'PackInputs'
        ]
        crop, flip, randaug, erase = train_pipe[1:5]
        assert (crop.scale, crop.backend,
                crop.interpolation) == (224, 'pillow', 'bicubic')
        assert flip.prob == 0.5
        # rand-m9-mstd0.5-inc1: 2 ops of timm's increasing set, m 9 +- 0.5
        assert (randaug.policies, randaug.num_policies, randaug.total_level,
                randaug.magnitude_level,
                randaug.magnitude_std) == ('timm_increasing', 2, 10, 9, 0.5)
        assert randaug.hparams.interpolation == 'bicubic'
        assert (erase.erase_prob, erase.mode, erase.min_area_ratio,
                erase.max_area_ratio) == (0.25, 'rand', 0.02, 1 / 3)
        test_pipe = cfg.test_dataloader.dataset.pipeline
        assert [t.type for t in test_pipe] == [
            'LoadImageFromFile', 'ResizeEdge', 'CenterCrop', 'PackInputs'
        ]
        assert (test_pipe[1].scale, test_pipe[1].edge,
                test_pipe[1].interpolation) == (256, 'short', 'bicubic')
        assert test_pipe[2].crop_size == 224
        annealing = dict(type='TemperatureAnnealingHook')  # 20 epochs
    else:
        # the MobileNetV2 jsons: SGD (Nesterov), lr 0.05 for 256, wd 4e-5,
        # 150 epochs, no warm-up, the "traditional" augmentation
        assert cfg.train_dataloader.batch_size == 32
        assert cfg.auto_scale_lr.base_batch_size == 256
        assert optim == dict(
            type='SGD',
            lr=0.05,
            momentum=0.9,
            nesterov=True,
            weight_decay=4e-5)
        assert cfg.train_cfg.max_epochs == 150
        sched = cfg.param_scheduler
        assert (sched.type, sched.begin, sched.end, sched.T_max,
                sched.eta_min) == ('CosineAnnealingLR', 0, 150, 150, 1e-6)
        check_plain_pipelines(cfg)
        annealing = dict(type='TemperatureAnnealingHook', epochs=15)

    hooks = cfg.get('custom_hooks', [])
    if preset == 'static':
        assert 'temperature' not in backbone
        assert not any(h.type == 'TemperatureAnnealingHook' for h in hooks)
    else:
        # the start of the annealing: the static one-hot network
        assert backbone.temperature == 1.0
        assert hooks == [annealing]
    # MobileNetV2 1/2x: the KW classifier anneals with the backbone
    if preset == 'kw1d2x' and arch.startswith('mobilenetv2'):
        assert (head.type, head.temperature) == ('KWLinearClsHead', 1.0)
    else:
        assert head.type == 'DropoutLinearClsHead'


def test_every_imagenet_config_is_listed():
    import glob
    found = sorted(
        osp.relpath(p, CONFIGS)
        for p in glob.glob(osp.join(CONFIGS, '*', '*_in1k.py')))
    assert found == sorted(all_configs())
    assert len(odconv_paper_configs()) == 30
    # 8 + 4 KW models (ResNet-18 / -50, MobileNetV2 1.0 / 0.5 x 3) and
    # their 4 static baselines
    assert len(kw_recipe_configs()) == 8 + 6 + 4


def build_classifier(name: str, device: str = 'cpu'):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    with DefaultScope.overwrite_default_scope('mmpretrain'), \
            torch.device(device):
        return MODELS.build(cfg.model)


# Parameter counts of the official ODConv code (FACTS.md), classifier
# included; they pin which convs each preset makes dynamic.
@pytest.mark.parametrize('name, expected', [
    ('resnet/resnet50_8xb32_in1k.py', 25_557_032),
    ('resnet/odconv1x_resnet18_8xb32_in1k.py', 11_943_944),
    ('resnet/odconv4x_resnet18_8xb32_in1k.py', 44_901_640),
    ('mobilenet_v2/mobilenetv2-1.0_8xb32_in1k.py', 3_504_872),
    ('mobilenet_v2/odconv1x_mobilenetv2-1.0_8xb32_in1k.py', 4_940_185),
    ('mobilenet_v2/odconv4x_mobilenetv2-1.0_8xb32_in1k.py', 11_512_149),
])
def test_published_parameter_counts(name, expected):
    model = build_classifier(name)
    assert num_params(model) == expected


# The release's ImageNet models: exactly what its code builds (the counts
# that test_kw_backbones.py checks against its README; ResNet-18 1/4x builds
# 4,031,768 where the README says 4.08M) and the README's static baselines.
@pytest.mark.parametrize('name, arch, preset', kw_recipe_configs())
def test_kernelwarehouse_configs_build_the_release_models(name, arch, preset):
    count = num_params(build_classifier(name, device='meta'))
    if preset == 'static':
        assert round(count / 1e6, 2) == KW_STATIC_README[arch]
    else:
        _, _, size, release_arch = ARCHS[arch]
        release = KW_RELEASE[release_arch][f'{size}_{preset}']
        assert 'convs' in release  # a layout the release trains
        assert count == release['params']


@pytest.mark.parametrize('name', [
    config_name('resnet50', 'kw1d2x', 'kw'),
    config_name('mobilenetv2-1.0', 'kw1d2x', 'kw'),
])
def test_kernelwarehouse_recipes_do_not_decay_1d_parameters_or_biases(name):
    """The release's rule (``optim_factory.py``): no weight decay where
    ``param.ndim == 1 or name.endswith('.bias')``, ``weight_decay``
    elsewhere (KW cells, attention FCs and the non-local basis included)."""
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    model = build_classifier(name, device='meta')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    decay = {
        id(p): group['weight_decay']
        for group in optimizer.param_groups
        for p in group['params']
    }
    params = dict(model.named_parameters())
    assert len(decay) == len(params)
    base = cfg.optim_wrapper.optimizer.weight_decay
    for key, param in params.items():
        exempt = param.ndim == 1 or key.endswith('.bias')
        assert decay[id(param)] == (0.0 if exempt else base), key
    # the release's KW parameters of both kinds are there
    assert any('warehouse_manager' in k for k in params)
    assert any(k.endswith('attention.norm1.weight') for k in params)
    if name.startswith('resnet'):
        assert any(k.endswith('basis_bias') for k in params)


def test_condconv_resnet50_has_8_expert_classifier():
    model = build_classifier('resnet/condconv8x_resnet50_8xb32_in1k.py')
    assert isinstance(model.head, CondConvClsHead)
    assert isinstance(model.head.fc, CondConvLinear)
    # 8 x (2048 x 1000 + 1000) experts + the routing FC 2048 -> 8
    assert num_params(model.head) == 8 * (2048 * 1000 + 1000) + 2048 * 8 + 8
    # CondConv (8x) ResNet-50 with one sigmoid routing per conv: 129.90M
    assert round(num_params(model) / 1e6, 2) == 129.90


# --------------------------------------------------------------------------
# heads
# --------------------------------------------------------------------------
def test_condconv_linear_is_a_routed_mixture_of_experts():
    torch.manual_seed(0)
    layer = CondConvLinear(6, 5, num_experts=3)
    x = torch.randn(4, 6)
    out = layer(x)
    r = torch.sigmoid(x @ layer.routing.weight.t() + layer.routing.bias)
    for n in range(4):
        w = sum(r[n, e] * layer.weight[e] for e in range(3))
        b = sum(r[n, e] * layer.bias[e] for e in range(3))
        torch.testing.assert_close(out[n], w @ x[n] + b)
    out.sum().backward()
    assert layer.weight.grad.abs().sum() > 0
    assert layer.routing.weight.grad.abs().sum() > 0


def test_heads_dropout_and_losses():
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    feats = (torch.randn(4, 16), )
    samples = [DataSample().set_gt_label(i % 3) for i in range(4)]
    for head in (DropoutLinearClsHead(3, 16, dropout_rate=0.5),
                 CondConvClsHead(3, 16, dropout_rate=0.5)):
        head.init_weights()
        head.train()
        torch.manual_seed(1)
        a = head(feats)
        torch.manual_seed(2)
        b = head(feats)
        assert not torch.allclose(a, b)  # dropout active in training
        head.eval()
        torch.testing.assert_close(head(feats), head(feats))
        assert head(feats).shape == (4, 3)
        loss = head.loss(feats, samples)['loss']
        assert loss.ndim == 0 and torch.isfinite(loss)
        preds = head.predict(feats)
        assert preds[0].pred_score.shape == (3, )
    with pytest.raises(ValueError):
        DropoutLinearClsHead(3, 16, dropout_rate=1.0)


# --------------------------------------------------------------------------
# toy dataset
# --------------------------------------------------------------------------
def test_toy_dataset_is_deterministic_and_readable(tmp_path):
    from mmpretrain.datasets import CustomDataset
    a = generate_toy_imagenet(str(tmp_path / 'a'))
    b = generate_toy_imagenet(str(tmp_path / 'b'))
    assert a == b and len(a['classes']) == 8 and len(a['train']) == 32
    for line in a['train'] + a['val']:
        rel = line.split()[0]
        split = 'train' if line in a['train'] else 'val'
        assert (tmp_path / 'a' / split /
                rel).read_bytes() == (tmp_path / 'b' / split /
                                      rel).read_bytes()
    folders = CustomDataset(data_root=str(tmp_path / 'a'), data_prefix='val')
    listed = CustomDataset(
        data_root=str(tmp_path / 'a'),
        ann_file='meta/val.txt',
        data_prefix='val')
    assert len(folders) == len(listed) == 16
    assert folders.CLASSES == tuple(a['classes'])
    assert sorted(int(folders.get_gt_labels()[i])
                  for i in range(16)) == sorted(
                      int(listed.get_gt_labels()[i]) for i in range(16))


# --------------------------------------------------------------------------
# training with annealing, resume, export, detection
# --------------------------------------------------------------------------
RECORDS: Dict[str, list] = {}

#: The toy runs: config, the annealing it configures (start, end, over 2 of
#: its 3 epochs) and the detection backbone its weights go to (ODConv at the
#: temperature 1 it ends with; KW at the family's detection default, 0, the
#: end of its annealing).
TOYS = {
    'odconv':
    dict(
        config=TOY_CONFIG,
        start=30.0,
        end=1.0,
        preset='odconv1x',
        det_temperature=1.0),
    'kw':
    dict(
        config=KW_TOY_CONFIG,
        start=1.0,
        end=0.0,
        preset='kw1x',
        det_temperature=None),
}


@HOOKS.register_module(force=True)
class _TemperatureRecorderForTest(Hook):
    """Records the temperature every dynamic layer uses in each forward."""

    priority = 'LOWEST'

    def __init__(self, key: str) -> None:
        self.key = key
        RECORDS[key] = []
        self._iter = None

    def before_run(self, runner) -> None:
        model = runner.model.module if hasattr(runner.model,
                                               'module') else runner.model
        layers = [
            m for m in model.backbone.modules()
            if isinstance(m, TemperatureMixin)
        ]
        assert len(layers) > 0

        def record(module, args):
            phase = 'train' if module.training else 'eval'
            RECORDS[self.key].append(
                (phase, runner.iter, float(module.temperature)))

        for layer in layers:
            layer.register_forward_pre_hook(record)


def run_cfg(cfg: Config, key: str, name: str):
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='_TemperatureRecorderForTest', key=key)
    ]
    cfg.experiment_name = name
    return Runner.from_cfg(cfg)


def expected_train_temperature(k: int,
                               total: int = 8,
                               start: float = 30.0,
                               end: float = 1.0) -> float:
    return start + (end - start) * min((k + 1) / total, 1.0)


def check_forward_temperatures(records: list, iters: range,
                               val_iters: List[int], start: float,
                               end: float) -> None:
    train = [(it, t) for phase, it, t in records if phase == 'train']
    assert sorted({it for it, _ in train}) == list(iters)
    for it, t in train:
        assert t == pytest.approx(
            expected_train_temperature(it, start=start, end=end)), it
    evals = [(it, t) for phase, it, t in records if phase == 'eval']
    assert sorted({it for it, _ in evals}) == val_iters
    for it, t in evals:
        # the temperature of the last trained iteration
        assert t == pytest.approx(
            expected_train_temperature(it - 1, start=start, end=end)), it


def train_toy(name: str, tmp_path_factory) -> dict:
    """Train a toy config (3 epochs of 4 iterations), resume at epoch 1."""
    toy = TOYS[name]
    tmp = tmp_path_factory.mktemp(f'cls_{name}')
    data_root = str(tmp / 'toy_imagenet')
    generate_toy_imagenet(data_root)
    train_tool = importlib.import_module('projects.classification.tools.train')

    def make_cfg(argv: List[str]) -> Config:
        old = sys.argv
        sys.argv = ['train.py', toy['config']] + argv + [
            '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}',
            f'test_dataloader.dataset.data_root={data_root}',
            'default_hooks.logger.interval=4'
        ]
        try:
            args = train_tool.parse_args()
        finally:
            sys.argv = old
        return train_tool.merge_args(Config.fromfile(toy['config']), args)

    full = run_cfg(
        make_cfg(['--work-dir', str(tmp / 'full')]), f'{name}_full',
        f'toy_{name}_full')
    model = full.train()
    resumed = run_cfg(
        make_cfg([
            '--work-dir',
            str(tmp / 'resumed'), '--resume',
            str(tmp / 'full' / 'epoch_1.pth')
        ]), f'{name}_resumed', f'toy_{name}_resumed')
    resumed.train()
    return dict(
        name=name,
        tmp=tmp,
        data_root=data_root,
        model=model,
        full=full,
        resumed=resumed,
        **toy)


@pytest.fixture(scope='module')
def odconv_toy(tmp_path_factory):
    return train_toy('odconv', tmp_path_factory)


@pytest.fixture(scope='module')
def kw_toy(tmp_path_factory):
    return train_toy('kw', tmp_path_factory)


@pytest.fixture(scope='module', params=sorted(TOYS))
def toy_run(request):
    """Each toy run (ODConv, KernelWarehouse), trained once per module."""
    return request.getfixturevalue(f'{request.param}_toy')


def test_training_anneals_temperature_per_iteration(toy_run):
    # 32 images / batch 8 = 4 iterations an epoch, annealing over 2 epochs
    name, start, end = toy_run['name'], toy_run['start'], toy_run['end']
    assert len(toy_run['full'].train_dataloader) == 4
    assert toy_run['full'].iter == 12
    check_forward_temperatures(RECORDS[f'{name}_full'], range(0, 12),
                               [4, 8, 12], start, end)
    first = [
        t for p, it, t in RECORDS[f'{name}_full'] if p == 'train' and it == 0
    ]
    assert first[0] == pytest.approx(start + (end - start) / 8)
    if name == 'odconv':
        assert first[0] == pytest.approx(30 - 29 / 8)
    # after training every dynamic layer is at the final temperature
    temps = get_temperatures(toy_run['model'])
    assert len(temps) > 0 and set(temps.values()) == {end}


def test_resume_in_the_middle_of_the_annealing(toy_run):
    # resumed from epoch 1 (iteration 4 of 8 annealing iterations)
    name, start, end = toy_run['name'], toy_run['start'], toy_run['end']
    check_forward_temperatures(RECORDS[f'{name}_resumed'], range(4, 12),
                               [8, 12], start, end)
    first = [t for p, it, t in RECORDS[f'{name}_resumed'] if p == 'train']
    assert first[0] == pytest.approx(
        expected_train_temperature(4, start=start, end=end))
    assert first[0] == pytest.approx(start + (end - start) * 5 / 8)
    # and ends where the uninterrupted run ends
    assert toy_run['resumed'].iter == toy_run['full'].iter == 12


def test_kw_toy_trains_with_the_release_recipe(kw_toy):
    """AdamW without decay on 1-D parameters and biases, warm-up then
    cosine to 1e-6, mixup / CutMix, label smoothing, drop path."""
    from mmpretrain.models.losses import LabelSmoothLoss
    from mmpretrain.models.utils.batch_augments import CutMix, Mixup
    runner = kw_toy['full']
    model = kw_toy['model']
    optimizer = runner.optim_wrapper.optimizer
    assert type(optimizer).__name__ == 'AdamW'
    decay = {
        id(p): group['weight_decay']
        for group in optimizer.param_groups
        for p in group['params']
    }
    for key, param in model.named_parameters():
        exempt = param.ndim == 1 or key.endswith('.bias')
        assert decay[id(param)] == (0.0 if exempt else 0.05), key
    # the last iteration ran at the release's last cosine value: step 7 of
    # 8 (2 epochs of 4 iterations after 1 epoch of warm-up) from 1e-3 to 1e-6
    lrs = runner.optim_wrapper.get_lr()['lr']
    last = 1e-6 + (1e-3 - 1e-6) * (1 + math.cos(math.pi * 7 / 8)) / 2
    assert lrs == pytest.approx([last] * len(lrs))
    # every batch is mixed: mixup or CutMix, 50 / 50, never left alone
    augments = model.data_preprocessor.batch_augments
    mixup, cutmix, identity = augments.augments
    assert (type(mixup), type(cutmix), identity) == (Mixup, CutMix, None)
    assert (mixup.alpha, cutmix.alpha) == (0.8, 1.0)
    assert list(augments.probs) == [0.5, 0.5, 0.0]
    assert isinstance(model.head.loss_module, LabelSmoothLoss)
    assert model.head.loss_module.label_smooth_val == 0.1
    blocks = [
        b for n in model.backbone.res_layers
        for b in getattr(model.backbone, n)
    ]
    assert [b.drop_path.drop_prob for b in blocks] == [0.1] * len(blocks)


def test_test_tool_reports_top1_top5_at_trained_temperature(toy_run):
    test_tool = importlib.import_module('projects.classification.tools.test')
    tmp, data_root = toy_run['tmp'], toy_run['data_root']
    start, end, config = toy_run['start'], toy_run['end'], toy_run['config']
    for ckpt, expected in (('epoch_1.pth', (start + end) / 2), ('epoch_3.pth',
                                                                end)):
        old = sys.argv
        sys.argv = [
            'test.py', config,
            str(tmp / 'full' / ckpt), '--work-dir',
            str(tmp / 'test'), '--cfg-options',
            f'test_dataloader.dataset.data_root={data_root}'
        ]
        try:
            args = test_tool.parse_args()
        finally:
            sys.argv = old
        cfg = test_tool.merge_args(Config.fromfile(config), args)
        key = f'test_{toy_run["name"]}_{ckpt}'
        metrics = run_cfg(cfg, key, key).test()
        assert set(metrics) == {'accuracy/top1', 'accuracy/top5'}
        assert 0.0 <= metrics['accuracy/top1'] <= metrics[
            'accuracy/top5'] <= 100.0
        temps = [t for p, _, t in RECORDS[key] if p == 'eval']
        assert len(temps) > 0 and temps == pytest.approx(
            [expected] * len(temps))
    if toy_run['name'] == 'odconv':
        assert (start + end) / 2 == 15.5


def faster_rcnn_cfg(tmp, checkpoint: str, preset: str,
                    temperature: Optional[float]) -> Config:
    path = osp.join(str(tmp), f'faster_rcnn_{preset}_r18-c16_toy.py')
    # without a temperature the backbone takes its family's detection value
    temperature_line = '' if temperature is None else \
        f'        temperature={temperature!r},\n'
    with open(path, 'w') as f:
        f.write(
            "_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'\n"
            'model = dict(\n'
            '    backbone=dict(\n'
            '        _delete_=True,\n'
            "        type='DynamicResNet',\n"
            '        depth=18,\n'
            '        base_channels=16,\n'
            f'        preset={preset!r},\n' + temperature_line +
            '        out_indices=(0, 1, 2, 3),\n'
            '        frozen_stages=1,\n'
            '        norm_eval=True,\n'
            "        init_cfg=dict(type='Pretrained', checkpoint="
            f'{checkpoint!r})),\n'
            '    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),\n'
            '    rpn_head=dict(in_channels=32, feat_channels=32),\n'
            '    roi_head=dict(bbox_roi_extractor=dict(out_channels=32),\n'
            '                  bbox_head=dict(in_channels=32, '
            'fc_out_channels=64, num_classes=3)))\n')
    return Config.fromfile(path)


def build_detector(cfg: Config):
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MODELS.build(cfg.model)
        detector.init_weights()
    return detector


@pytest.mark.parametrize('layout', ['exported', 'mmpretrain'])
def test_detector_starts_from_the_classification_weights(toy_run, layout):
    from mmdet.structures import DetDataSample
    tmp = toy_run['tmp']
    cls_ckpt = str(tmp / 'full' / 'epoch_3.pth')
    if layout == 'exported':
        exporter = importlib.import_module(
            'tools.model_converters.export_cls_backbone')
        ckpt = str(tmp / 'checkpoints' /
                   f'{toy_run["preset"]}_resnet18-c16_toy.pth')
        old = sys.argv
        sys.argv = ['export_cls_backbone.py', cls_ckpt, ckpt]
        try:
            exporter.main()
        finally:
            sys.argv = old
        exported = safe_torch_load(ckpt)
        assert set(exported) == {'meta', 'state_dict'}
        assert not any(
            k.startswith(('backbone.', 'head.', 'neck.'))
            for k in exported['state_dict'])
    else:
        ckpt = cls_ckpt

    reference = {
        k[len('backbone.'):]: v
        for k, v in safe_torch_load(cls_ckpt)['state_dict'].items()
        if k.startswith('backbone.')
    }
    detector = build_detector(
        faster_rcnn_cfg(tmp, ckpt, toy_run['preset'],
                        toy_run['det_temperature']))
    state = detector.backbone.state_dict()
    # zero missing / unexpected keys and bit-identical tensors
    assert set(state) == set(reference)
    for key, value in reference.items():
        assert torch.equal(state[key], value), key
    if toy_run['name'] == 'kw':
        # the stage warehouses come along with the convs
        assert any(k.startswith('warehouse_manager.') for k in reference)
    temps = get_temperatures(detector.backbone)
    assert len(temps) > 0 and set(temps.values()) == {toy_run['end']}

    # same features as the trained classifier for the same input
    classifier = toy_run['model']
    classifier.eval()
    detector.eval()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        cls_feat = classifier.backbone(x)[-1]
        det_feats = detector.backbone(x)
    assert len(det_feats) == 4
    torch.testing.assert_close(det_feats[-1], cls_feat, rtol=0, atol=0)

    # and the detector runs end to end
    img = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(64, 64),
            ori_shape=(64, 64),
            scale_factor=(1.0, 1.0),
            img_id=0))
    with torch.no_grad():
        results = detector.test_step(dict(inputs=[img], data_samples=[sample]))
    assert len(results) == 1 and hasattr(results[0], 'pred_instances')


def test_export_refuses_checkpoints_without_backbone(tmp_path):
    exporter = importlib.import_module(
        'tools.model_converters.export_cls_backbone')
    with pytest.raises(KeyError):
        exporter.extract_backbone(dict(state_dict={'fc.weight': 1}))
    out = exporter.extract_backbone({
        'module.backbone.conv1.weight':
        torch.ones(1),
        'module.head.fc.weight':
        torch.zeros(1)
    })
    assert list(out) == ['conv1.weight']
