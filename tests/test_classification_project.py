"""Tests of the ImageNet classification project (projects/classification).

Covers the 30 ImageNet configs (ODConv paper recipes), the classification
heads (CondConv's 8-expert classifier), the toy dataset, the tools, and the
handover to detection: a tiny ODConv ResNet-18 is trained on the toy dataset
with the temperature annealed (checked during training and after a resume in
the middle of the annealing), its checkpoint is exported and initialises a
Faster R-CNN whose backbone then holds exactly the trained weights.
"""
import importlib
import importlib.util
import os.path as osp
import sys
from typing import Dict, List

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import HOOKS, DefaultScope
from mmengine.runner import Runner

import dynconv_mmdet  # noqa: F401
from dynconv_mmdet.models.layers import TemperatureMixin, get_temperatures
from dynconv_mmdet.utils.checkpoint import safe_torch_load

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

_project = importlib.import_module('projects.classification.dynconv_cls')
CondConvClsHead = _project.CondConvClsHead
DropoutLinearClsHead = _project.DropoutLinearClsHead
generate_toy_imagenet = _project.generate_toy_imagenet
CondConvLinear = importlib.import_module(
    'projects.classification.dynconv_cls.models.heads').CondConvLinear

PROJECT = osp.join(REPO_ROOT, 'projects', 'classification')
CONFIGS = osp.join(PROJECT, 'configs')
TOY_CONFIG = osp.join(CONFIGS, 'toy', 'odconv1x_resnet18-c16_1xb8_toy-32px.py')

VARIANTS = ['', 'condconv8x_', 'dyconv4x_', 'odconv1x_', 'odconv4x_']
RESNETS = {'resnet18': 0.1, 'resnet50': 0.2, 'resnet101': 0.2}
MOBILENETS = {
    'mobilenetv2-1.0': 0.2,
    'mobilenetv2-0.75': 0.1,
    'mobilenetv2-0.5': 0.0
}


@pytest.fixture(scope='module', autouse=True)
def single_torch_thread():
    """Tiny CPU workloads: one intra-op thread avoids oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_module(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def all_configs() -> List[str]:
    names = []
    for arch in RESNETS:
        names += [f'resnet/{v}{arch}_8xb32_in1k.py' for v in VARIANTS]
    for arch in MOBILENETS:
        names += [f'mobilenet_v2/{v}{arch}_8xb32_in1k.py' for v in VARIANTS]
    return names


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------
@pytest.mark.parametrize('name', all_configs())
def test_config_follows_odconv_recipe(name):
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    base = osp.basename(name)
    variant = base.split('_')[0] if base.split('_')[0] in (
        'condconv8x', 'dyconv4x', 'odconv1x', 'odconv4x') else 'static'
    arch = base[len(variant) + 1:] if variant != 'static' else base
    arch = arch.split('_')[0]
    backbone, head = cfg.model.backbone, cfg.model.head

    assert cfg.default_scope == 'mmpretrain'
    assert 'dynconv_mmdet' in cfg.custom_imports.imports
    assert cfg.model.type == 'ImageClassifier'
    assert backbone.preset == variant
    assert backbone.frozen_stages == -1 and backbone.norm_eval is False
    assert cfg.model.neck.type == 'GlobalAveragePooling'
    assert head.num_classes == 1000
    assert tuple(head.topk) == (1, 5)
    assert cfg.val_evaluator == dict(type='Accuracy', topk=(1, 5))
    assert cfg.test_evaluator == cfg.val_evaluator

    # 8 GPUs x 32 images; train RRC 224 + flip, test short side 256 + CC 224
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.auto_scale_lr.base_batch_size == 256
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
    assert cfg.data_preprocessor.to_rgb is True

    optim = cfg.optim_wrapper.optimizer
    assert optim.type == 'SGD' and optim.momentum == 0.9
    if arch in RESNETS:
        assert backbone.type == 'mmdet.DynamicResNet'
        assert backbone.depth == int(arch[len('resnet'):])
        assert tuple(backbone.out_indices) == (3, )
        assert head.in_channels == (512 if arch == 'resnet18' else 2048)
        assert head.dropout_rate == RESNETS[arch]
        assert (optim.lr, optim.weight_decay) == (0.1, 1e-4)
        assert cfg.train_cfg.max_epochs == 100
        assert cfg.param_scheduler.type == 'MultiStepLR'
        assert list(cfg.param_scheduler.milestones) == [30, 60, 90]
        assert cfg.param_scheduler.gamma == 0.1
    else:
        assert backbone.type == 'mmdet.DynamicMobileNetV2'
        assert backbone.widen_factor == float(arch.split('-')[1])
        assert tuple(backbone.out_indices) == (7, )
        assert head.in_channels == 1280
        assert head.dropout_rate == MOBILENETS[arch]
        assert (optim.lr, optim.weight_decay) == (0.05, 4e-5)
        assert cfg.train_cfg.max_epochs == 150
        sched = cfg.param_scheduler
        assert sched.type == 'CosineAnnealingLR'
        assert (sched.T_max, sched.eta_min, sched.end) == (150, 0.0, 150)

    hooks = cfg.get('custom_hooks', [])
    if variant in ('dyconv4x', 'odconv1x', 'odconv4x'):
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
                     if variant == 'condconv8x' else 'DropoutLinearClsHead')
    assert head.type == expected_head
    if variant == 'condconv8x':
        assert head.num_experts == 8


def test_there_are_exactly_30_imagenet_configs():
    import glob
    found = sorted(
        osp.relpath(p, CONFIGS)
        for p in glob.glob(osp.join(CONFIGS, '*', '*_in1k.py')))
    assert found == sorted(all_configs())
    assert len(found) == 30


def build_classifier(name: str):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
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


def expected_train_temperature(k: int, total: int = 8) -> float:
    return 30.0 + (1.0 - 30.0) * min((k + 1) / total, 1.0)


def check_forward_temperatures(records: list, iters: range,
                               val_iters: List[int]) -> None:
    train = [(it, t) for phase, it, t in records if phase == 'train']
    assert sorted({it for it, _ in train}) == list(iters)
    for it, t in train:
        assert t == pytest.approx(expected_train_temperature(it)), it
    evals = [(it, t) for phase, it, t in records if phase == 'eval']
    assert sorted({it for it, _ in evals}) == val_iters
    for it, t in evals:
        # the temperature of the last trained iteration
        assert t == pytest.approx(expected_train_temperature(it - 1)), it


@pytest.fixture(scope='module')
def toy_run(tmp_path_factory):
    """Train the toy config (3 epochs of 4 iterations), resume at epoch 1."""
    tmp = tmp_path_factory.mktemp('cls')
    data_root = str(tmp / 'toy_imagenet')
    generate_toy_imagenet(data_root)
    train_tool = load_module(
        osp.join(PROJECT, 'tools', 'train.py'), 'cls_train_tool')

    def make_cfg(argv: List[str]) -> Config:
        old = sys.argv
        sys.argv = ['train.py', TOY_CONFIG] + argv + [
            '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}',
            f'test_dataloader.dataset.data_root={data_root}',
            'default_hooks.logger.interval=4'
        ]
        try:
            args = train_tool.parse_args()
        finally:
            sys.argv = old
        return train_tool.merge_args(Config.fromfile(TOY_CONFIG), args)

    full = run_cfg(
        make_cfg(['--work-dir', str(tmp / 'full')]), 'full', 'toy_full')
    model = full.train()
    resumed = run_cfg(
        make_cfg([
            '--work-dir',
            str(tmp / 'resumed'), '--resume',
            str(tmp / 'full' / 'epoch_1.pth')
        ]), 'resumed', 'toy_resumed')
    resumed.train()
    return dict(
        tmp=tmp, data_root=data_root, model=model, full=full, resumed=resumed)


def test_training_anneals_temperature_per_iteration(toy_run):
    # 32 images / batch 8 = 4 iterations an epoch, annealing over 2 epochs
    assert len(toy_run['full'].train_dataloader) == 4
    assert toy_run['full'].iter == 12
    check_forward_temperatures(RECORDS['full'], range(0, 12), [4, 8, 12])
    first = [t for p, it, t in RECORDS['full'] if p == 'train' and it == 0]
    assert first[0] == pytest.approx(30 - 29 / 8)
    # after training every dynamic layer is at the final temperature 1
    temps = get_temperatures(toy_run['model'])
    assert len(temps) > 0 and set(temps.values()) == {1.0}


def test_resume_in_the_middle_of_the_annealing(toy_run):
    # resumed from epoch 1 (iteration 4 of 8 annealing iterations)
    check_forward_temperatures(RECORDS['resumed'], range(4, 12), [8, 12])
    first = [t for p, it, t in RECORDS['resumed'] if p == 'train']
    assert first[0] == pytest.approx(expected_train_temperature(4))
    assert first[0] == pytest.approx(30 - 29 * 5 / 8)


def test_test_tool_reports_top1_top5_at_trained_temperature(toy_run):
    test_tool = load_module(
        osp.join(PROJECT, 'tools', 'test.py'), 'cls_test_tool')
    tmp, data_root = toy_run['tmp'], toy_run['data_root']
    for ckpt, expected in (('epoch_1.pth', 15.5), ('epoch_3.pth', 1.0)):
        old = sys.argv
        sys.argv = [
            'test.py', TOY_CONFIG,
            str(tmp / 'full' / ckpt), '--work-dir',
            str(tmp / 'test'), '--cfg-options',
            f'test_dataloader.dataset.data_root={data_root}'
        ]
        try:
            args = test_tool.parse_args()
        finally:
            sys.argv = old
        cfg = test_tool.merge_args(Config.fromfile(TOY_CONFIG), args)
        key = f'test_{ckpt}'
        metrics = run_cfg(cfg, key, key).test()
        assert set(metrics) == {'accuracy/top1', 'accuracy/top5'}
        assert 0.0 <= metrics['accuracy/top1'] <= metrics[
            'accuracy/top5'] <= 100.0
        temps = [t for p, _, t in RECORDS[key] if p == 'eval']
        assert len(temps) > 0 and temps == pytest.approx(
            [expected] * len(temps))


def faster_rcnn_cfg(tmp, checkpoint: str) -> Config:
    path = osp.join(str(tmp), 'faster_rcnn_odconv1x_r18-c16_toy.py')
    with open(path, 'w') as f:
        f.write(
            "_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'\n"
            'model = dict(\n'
            '    backbone=dict(\n'
            '        _delete_=True,\n'
            "        type='DynamicResNet',\n"
            '        depth=18,\n'
            '        base_channels=16,\n'
            "        preset='odconv1x',\n"
            '        temperature=1.0,\n'
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
        exporter = load_module(
            osp.join(REPO_ROOT, 'tools', 'model_converters',
                     'export_cls_backbone.py'), 'export_cls_backbone')
        ckpt = str(tmp / 'checkpoints' / 'odconv1x_resnet18-c16_toy.pth')
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
    detector = build_detector(faster_rcnn_cfg(tmp, ckpt))
    state = detector.backbone.state_dict()
    # zero missing / unexpected keys and bit-identical tensors
    assert set(state) == set(reference)
    for key, value in reference.items():
        assert torch.equal(state[key], value), key
    temps = get_temperatures(detector.backbone)
    assert len(temps) > 0 and set(temps.values()) == {1.0}

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
    exporter = load_module(
        osp.join(REPO_ROOT, 'tools', 'model_converters',
                 'export_cls_backbone.py'), 'export_cls_backbone')
    with pytest.raises(KeyError):
        exporter.extract_backbone(dict(state_dict={'fc.weight': 1}))
    out = exporter.extract_backbone({
        'module.backbone.conv1.weight':
        torch.ones(1),
        'module.head.fc.weight':
        torch.zeros(1)
    })
    assert list(out) == ['conv1.weight']
