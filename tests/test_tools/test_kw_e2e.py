# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The KernelWarehouse detection configs train on the toy COCO set.

Two iterations from scratch (``init_cfg=None``) through ``tools/train.py``'s
set-up (config, start-up checks, ``SafeLoadRunner``), on CPU:

- ``kw1x_faster_rcnn_r50_fpn_1x.py`` (the SGD recipe) shrunk to a ResNet-18
  with thin heads at 128 px, with one image per batch (BatchNorms learning,
  so the KW attention norm sees a single sample) and with two (the config's
  frozen statistics);
- ``kw1x_mask_rcnn_r50_fpn_adamw_1x.py`` (the release's recipe) shrunk the
  same way, with its own multi-scale crop pipeline at 1/8 of its sizes.

Each run uses every trainable parameter (no ``find_unused_parameters``),
leaves the frozen ones untouched and freezes the warehouse cells of the
frozen stage only where the config says so (``freeze_shared_state``). The
release recipe's pipeline is also run at full size on the toy images, each
branch of its random choice on its own.
"""
import copy
import importlib
import math
import os.path as osp
from typing import Any, Dict, List

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from tools.misc.generate_toy_coco import CLASSES, PALETTE, generate_toy_coco

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SGD_CONFIG = osp.join(REPO, 'configs', 'kw1x_faster_rcnn_r50_fpn_1x.py')
ADAMW_CONFIG = osp.join(REPO, 'configs', 'kw1x_mask_rcnn_r50_fpn_adamw_1x.py')
# The release's training resolutions: short sides 480-800, step 32.
SHORT_SIDES = set(range(480, 801, 32))

# A few iterations of a COCO config on the toy set: its classes, no
# evaluation, no checkpoint, a short warm-up instead of the epoch schedule,
# a ResNet-18 with thin FPN and heads.
_SMALL_RUN = """
_base_ = {base!r}
data_root = {data_root!r}
metainfo = dict(classes={classes!r}, palette={palette!r})
train_pipeline = {pipeline!r}
train_dataloader = dict(
    batch_size={batch_size},
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        pipeline=train_pipeline))
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)
]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(by_epoch=False, interval=100),
    visualization=dict(draw=False))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
model = dict(
    backbone=dict(depth=18, norm_eval={norm_eval}, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64,
                       num_classes={num_classes}){mask_head}),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=100),
        rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100)))
"""
_THIN_MASK_HEAD = """,
        mask_roi_extractor=dict(out_channels=32),
        mask_head=dict(in_channels=32, conv_out_channels=32,
                       num_classes={num_classes})"""


class _Probe(Hook):
    """Records the weights at the start, which parameters receive a finite
    gradient, and the losses."""

    def before_train(self, runner) -> None:
        model = runner.model
        self.start = {
            n: p.detach().clone()
            for n, p in model.named_parameters()
        }
        self.trainable = {
            n
            for n, p in model.named_parameters() if p.requires_grad
        }
        self.got_grad = set()
        self.losses: List[float] = []
        for name, param in model.named_parameters():
            if param.requires_grad:
                param.register_hook(lambda grad, name=name: self.got_grad.add(
                    name) if torch.isfinite(grad).all() else None)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Any = None) -> None:
        self.losses.append(float(outputs['loss'].detach()))


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('kw_toy_coco'))
    generate_toy_coco(root, num_train=4, num_val=1, image_size=224, seed=0)
    return root + '/'


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny CPU workloads: one intra-op thread avoids oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _scaled(node: Any, factor: float) -> Any:
    """A pipeline with its resize scales and crop sizes times ``factor``."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == 'scales':
                value = [
                    tuple(int(s * factor) for s in scale) for scale in value
                ]
            elif key == 'crop_size':
                value = tuple(int(s * factor) for s in value)
            else:
                value = _scaled(value, factor)
            out[key] = value
        return out
    if isinstance(node, (list, tuple)):
        return [_scaled(value, factor) for value in node]
    return node


def _types(node: Any) -> Any:
    """The transform types of a pipeline, nesting kept."""
    if isinstance(node, dict):
        inner = node.get('transforms')
        return (node['type'], _types(inner)) if inner else node['type']
    return [_types(value) for value in node]


def _train_pipeline(config: str) -> list:
    """The training pipeline of ``config`` as plain dicts and lists."""
    return Config.fromfile(
        config).to_dict()['train_dataloader']['dataset']['pipeline']


def _train(config: str, toy_root: str, work_dir: str, pipeline: list,
           batch_size: int, norm_eval: bool) -> tuple:
    """``tools/train.py`` on the shrunk ``config``: its runner, our probe."""
    from mmengine.registry import RUNNERS

    from dynconv_mmdet.engine.preflight import check_config
    mask_head = ''
    if Config.fromfile(config).model.type == 'MaskRCNN':
        mask_head = _THIN_MASK_HEAD.format(num_classes=len(CLASSES))
    path = osp.join(work_dir, 'small.py')
    with open(path, 'w') as f:
        f.write(
            _SMALL_RUN.format(
                base=config,
                data_root=toy_root,
                classes=CLASSES,
                palette=[list(c) for c in PALETTE],
                pipeline=pipeline,
                batch_size=batch_size,
                norm_eval=norm_eval,
                num_classes=len(CLASSES),
                mask_head=mask_head))
    train = importlib.import_module('tools.train')
    cfg = train.build_config(
        train.parse_args([path, '--work-dir',
                          osp.join(work_dir, 'work')]))
    check_config(cfg, splits=('train', ), check_images=True)
    runner = RUNNERS.build(cfg)
    probe = _Probe()
    runner.register_hook(probe, 'LOWEST')
    runner.train()
    return runner, probe


def _check_run(runner, probe: _Probe, freeze_shared_state: bool) -> None:
    assert type(runner).__name__ == 'SafeLoadRunner'
    assert runner.iter == 2
    assert len(probe.losses) == 2
    assert all(math.isfinite(loss) for loss in probe.losses), probe.losses
    # every trainable parameter takes part (no find_unused_parameters)
    assert probe.got_grad == probe.trainable, sorted(probe.trainable -
                                                     probe.got_grad)[:5]
    end = dict(runner.model.named_parameters())
    frozen = set(end) - probe.trainable
    for name in frozen:
        assert torch.equal(end[name], probe.start[name]), name
    # the stem and the first stage are frozen, with their KW attentions
    backbone = {n for n in end if n.startswith('backbone.')}
    frozen_stage = {
        n
        for n in backbone if n.startswith(('backbone.conv1.', 'backbone.bn1.',
                                           'backbone.layer1.'))
    }
    assert any('.attention.' in n for n in frozen_stage)
    cells = {n for n in backbone if '.warehouse_manager.' in n}
    assert len(cells) == 4  # one warehouse per stage
    # warehouse 0 serves layer1 (and the hand-over of layer2's first block)
    stage0 = 'backbone.warehouse_manager.weights.0'
    if freeze_shared_state:
        assert frozen == frozen_stage | {stage0}
    else:
        assert frozen == frozen_stage
    for name in cells - frozen:
        assert not torch.equal(end[name], probe.start[name]), name


@pytest.mark.parametrize(
    'batch_size, norm_eval', [(1, False), (2, True)],
    ids=['batch1-bn-learning', 'batch2-config-bn'])
def test_kw_sgd_config_trains(toy_root, tmp_path, batch_size, norm_eval):
    pipeline = _train_pipeline(SGD_CONFIG)
    resize = next(t for t in pipeline if t['type'] == 'Resize')
    resize['scale'] = (128, 128)
    runner, probe = _train(SGD_CONFIG, toy_root, str(tmp_path), pipeline,
                           batch_size, norm_eval)
    assert type(runner.optim_wrapper.optimizer).__name__ == 'SGD'
    _check_run(runner, probe, freeze_shared_state=True)


def test_kw_release_recipe_config_trains(toy_root, tmp_path):
    full = _train_pipeline(ADAMW_CONFIG)
    pipeline = _scaled(full, 1 / 8)
    assert _types(pipeline) == _types(full)
    choice = next(t for t in pipeline if t['type'] == 'RandomChoice')
    assert [t['type'] for t in choice['transforms'][1]
            ] == ['RandomChoiceResize', 'RandomCrop', 'RandomChoiceResize']
    runner, probe = _train(
        ADAMW_CONFIG,
        toy_root,
        str(tmp_path),
        pipeline,
        batch_size=2,
        norm_eval=True)
    _check_run(runner, probe, freeze_shared_state=False)

    # AdamW with the release's exemptions: the trainable KW attention norms
    optimizer = runner.optim_wrapper.optimizer
    assert type(optimizer).__name__ == 'AdamW'
    names = {id(p): n for n, p in runner.model.named_parameters()}
    decay: Dict[str, float] = {}
    for group in optimizer.param_groups:
        for param in group['params']:
            if param.requires_grad:
                decay[names[id(param)]] = group['weight_decay']
    exempt = {n for n, wd in decay.items() if wd == 0}
    assert exempt and exempt == {
        n
        for n in probe.trainable if '.attention.norm1.' in n
    }
    assert set(decay.values()) == {0.0, 0.05}


@pytest.mark.parametrize('branch', [0, 1], ids=['resize', 'resize-crop'])
def test_release_recipe_pipeline_on_toy_images(toy_root, branch):
    """The release recipe's training pipeline as configured, one branch of
    its random choice at a time: images, boxes and masks stay aligned."""
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    import dynconv_mmdet  # noqa: F401
    register_all_modules(init_default_scope=True)
    np.random.seed(0)  # the transforms draw from NumPy
    pipeline = copy.deepcopy(_train_pipeline(ADAMW_CONFIG))
    choice = next(t for t in pipeline if t['type'] == 'RandomChoice')
    choice['prob'] = [1.0 - branch, float(branch)]
    dataset = DATASETS.build(
        dict(
            type='CocoDataset',
            data_root=toy_root,
            metainfo=dict(classes=CLASSES, palette=PALETTE),
            ann_file='annotations/instances_train.json',
            data_prefix=dict(img='train/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=pipeline))
    shapes, num_instances = [], 0
    for index in range(len(dataset)):
        item = dataset[index]
        _, height, width = item['inputs'].shape
        shapes.append((height, width))
        # the toy images are square; a resize keeps the short side on the
        # release's scales (the long side stays far below 1333)
        assert min(height, width) in SHORT_SIDES
        assert max(height, width) <= 1333
        instances = item['data_samples'].gt_instances
        num_instances += len(instances)
        masks, boxes = instances.masks, instances.bboxes.tensor
        assert (masks.height, masks.width) == (height, width)
        assert len(masks) == len(boxes)
        assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= width).all()
        assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= height).all()
    assert num_instances > 0
    square = [h == w for h, w in shapes]
    if branch == 0:
        assert all(square)
    else:
        # crops of 384-600 px each way, resized back to the scales
        assert not all(square)
        assert all(
            max(h, w) / min(h, w) <= 600 / 384 + 0.01 for h, w in shapes)
