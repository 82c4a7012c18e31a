# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""An FDConv detection config trains on the toy COCO set.

``fdconv_mask_rcnn_r50_fpn_release-recipe_adamw_1x.py`` (the FDConv
release's recipe: AdamW with its exemptions, multi-scale crops, padding to
64) shrunk to a ResNet-18 (preset ``fdconv``) with thin heads, its pipeline
at 1/8 of its sizes, two iterations from scratch through ``tools/train.py``'s
set-up (config, start-up checks, ``SafeLoadRunner``) on CPU, in fp32
(AmpOptimWrapper needs a CUDA device). Every trainable parameter is used,
the frozen stage keeps its attention and FBM trainable (as the release) and
its spectra and norms untouched, and the batches are padded to 64.
"""
import importlib
import math
import os.path as osp
from typing import Any, List

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from tools.misc.generate_toy_coco import CLASSES, PALETTE, generate_toy_coco

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs',
                  'fdconv_mask_rcnn_r50_fpn_release-recipe_adamw_1x.py')
ATTENTION = ('.KSM_Global.', '.KSM_Local.', '.FBM.')

_SMALL_RUN = """
_base_ = {base!r}
data_root = {data_root!r}
metainfo = dict(classes={classes!r}, palette={palette!r})
train_pipeline = {pipeline!r}
train_dataloader = dict(
    batch_size=2,
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
optim_wrapper = dict(type='OptimWrapper')
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(by_epoch=False, interval=100, save_last=False),
    visualization=dict(draw=False))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64,
                       num_classes={num_classes}),
        mask_roi_extractor=dict(out_channels=32),
        mask_head=dict(in_channels=32, conv_out_channels=32,
                       num_classes={num_classes})),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=100),
        rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100)))
"""


class _Probe(Hook):
    """Records the weights at the start, which parameters receive a finite
    gradient, the losses and the padded batch shapes."""

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
        self.shapes: List[tuple] = []
        for name, param in model.named_parameters():
            if param.requires_grad:
                param.register_hook(lambda grad, name=name: self.got_grad.add(
                    name) if torch.isfinite(grad).all() else None)
        model.data_preprocessor.register_forward_hook(
            lambda module, args, out: self.shapes.append(
                tuple(out['inputs'].shape)))

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Any = None) -> None:
        self.losses.append(float(outputs['loss'].detach()))


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


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny CPU workloads: one intra-op thread avoids oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_fdconv_release_recipe_config_trains(tmp_path):
    from mmengine.registry import RUNNERS

    from dynconv_mmdet.engine.preflight import check_config
    from dynconv_mmdet.models.layers import FDConv2d
    root = str(tmp_path / 'toy_coco') + '/'
    generate_toy_coco(root, num_train=4, num_val=1, image_size=224, seed=0)
    pipeline = _scaled(
        Config.fromfile(CONFIG).to_dict()['train_dataloader']['dataset']
        ['pipeline'], 1 / 8)
    path = str(tmp_path / 'small.py')
    with open(path, 'w') as f:
        f.write(
            _SMALL_RUN.format(
                base=CONFIG,
                data_root=root,
                classes=CLASSES,
                palette=[list(c) for c in PALETTE],
                pipeline=pipeline,
                num_classes=len(CLASSES)))
    train = importlib.import_module('tools.train')
    cfg = train.build_config(
        train.parse_args([path, '--work-dir',
                          str(tmp_path / 'work')]))
    check_config(cfg, splits=('train', ), check_images=True)
    runner = RUNNERS.build(cfg)
    probe = _Probe()
    runner.register_hook(probe, 'LOWEST')
    runner.train()

    assert type(runner).__name__ == 'SafeLoadRunner'
    assert runner.iter == 2
    assert len(probe.losses) == 2
    assert all(math.isfinite(loss) for loss in probe.losses), probe.losses
    # padded to 64, as the release
    assert len(probe.shapes) == 2
    assert all(h % 64 == 0 and w % 64 == 0 for _, _, h, w in probe.shapes)
    model = runner.model
    backbone = model.backbone
    fdconvs = [
        n for n, m in backbone.named_modules()
        if isinstance(m, FDConv2d) and m.dense_reason is None
    ]
    assert len(fdconvs) == 16  # every ResNet-18 block conv
    # every trainable parameter takes part (no find_unused_parameters)
    assert probe.got_grad == probe.trainable, sorted(probe.trainable -
                                                     probe.got_grad)[:5]
    end = dict(model.named_parameters())
    frozen = set(end) - probe.trainable
    for name in frozen:
        assert torch.equal(end[name], probe.start[name]), name
    # the stem and the first stage are frozen but for their attention and
    # FBM, which train (the release's need_grad_list)
    assert frozen == {
        n
        for n in end
        if n.startswith(('backbone.conv1.', 'backbone.bn1.',
                         'backbone.layer1.')) and not any(a in n
                                                          for a in ATTENTION)
    }
    assert 'backbone.layer1.0.conv2.dft_weight' in frozen
    assert 'backbone.layer1.0.conv2.KSM_Global.bn.weight' in probe.trainable
    # AdamW with the release's exemptions: the local attention LayerNorms
    optimizer = runner.optim_wrapper.optimizer
    assert type(optimizer).__name__ == 'AdamW'
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {}
    for group in optimizer.param_groups:
        for param in group['params']:
            if param.requires_grad:
                decay[names[id(param)]] = group['weight_decay']
    exempt = {n for n, wd in decay.items() if wd == 0}
    assert exempt == {
        f'backbone.{conv}.KSM_Local.norm.{w}'
        for conv in fdconvs
        for w in ('weight', 'bias')
    }
    assert set(decay.values()) == {0.0, 0.05}
