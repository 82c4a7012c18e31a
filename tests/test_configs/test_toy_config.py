# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The main job's toy config: mmdet's CocoDataset on the generated set, and
a fixed seed that makes a run repeat bit for bit."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from tools.misc.generate_toy_coco import CLASSES, PALETTE, generate_toy_coco

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(REPO, 'configs', 'toy',
                      'odconv_faster_rcnn_r50_fpn_toy.py')

# The toy config at 128 px with a ResNet-18 and thin heads: the same
# randomness (init, sampler, flips) at a fraction of the cost.
_SMALL_RUN = """
_base_ = {base!r}
data_root = {data_root!r}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
test_dataloader = None
test_evaluator = None
test_cfg = None
train_cfg = dict(max_iters=2)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=100),
    visualization=dict(draw=False))
model = dict(
    backbone=dict(depth=18),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=100),
        rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100)))
"""


@pytest.fixture(scope='module', autouse=True)
def single_torch_thread():
    """Tiny CPU workloads: one intra-op thread avoids oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_toy_config_reads_the_set_with_coco_dataset():
    cfg = Config.fromfile(TOY_CONFIG)
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        assert loader.dataset.type == 'CocoDataset'
        assert tuple(loader.dataset.metainfo.classes) == CLASSES
        assert [tuple(c)
                for c in loader.dataset.metainfo.palette] == list(PALETTE)
    assert cfg.model.roi_head.bbox_head.num_classes == len(CLASSES)


def test_toy_config_fixes_the_seed():
    cfg = Config.fromfile(TOY_CONFIG)
    randomness = cfg.get('randomness')
    assert randomness is not None, 'the toy config must fix its seed'
    assert isinstance(randomness.seed, int)
    # deterministic=True only NaN-fills new tensors on a CPU (the kernels
    # are deterministic already): see the config's comment
    assert randomness.deterministic is False


@pytest.fixture(scope='module')
def small_config(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp('toy_seed')
    data_root = str(root / 'toy_coco') + '/'
    generate_toy_coco(data_root, num_train=4, num_val=1, image_size=224)
    path = root / 'small_toy.py'
    path.write_text(_SMALL_RUN.format(base=TOY_CONFIG, data_root=data_root))
    return str(path)


def _train(config: str, work_dir: str) -> dict:
    from mmengine.runner import Runner
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    runner = Runner.from_cfg(cfg)
    assert runner.seed == cfg.randomness.seed
    runner.train()
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def test_two_runs_of_the_toy_config_are_identical(small_config, tmp_path):
    """Same config, same machine: bit-identical weights after training
    (init, sampling order, flips and the steps all follow the seed)."""
    torch.manual_seed(1)
    first = _train(small_config, str(tmp_path / 'a'))
    torch.manual_seed(2)  # the config's seed, not the caller's, decides
    second = _train(small_config, str(tmp_path / 'b'))
    assert first.keys() == second.keys()
    different = [k for k in first if not torch.equal(first[k], second[k])]
    assert not different, different[:5]
