# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Numbers that look right but are not: ``tools/test.py`` refuses them.

- a checkpoint whose box regression is NaN: NMS drops the NaN boxes and an
  AP is printed anyway; the config's ``CheckFinitePredictionsHook`` stops
  before evaluating, naming the count of non-finite raw predictions;
- a test split whose every box is ``iscrowd``: COCO reports AP -1 for
  everything; the tool says that nothing was evaluated and exits non-zero.

Tiny ResNet-18 Faster R-CNN of the toy config, untrained weights.
"""
import importlib
import json
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from dynconv_mmdet.engine.hooks import (CheckFinitePredictionsHook,
                                        NonFinitePredictionError)
from dynconv_mmdet.engine.hooks.check_finite_predictions_hook import \
    count_non_finite
from dynconv_mmdet.testing.toy_detection import write_toy_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(REPO, 'configs', 'toy',
                      'odconv_faster_rcnn_r50_fpn_toy.py')


@pytest.fixture(scope='module')
def toy(tmp_path_factory, toy_coco) -> dict:
    tmp = tmp_path_factory.mktemp('evaluation_faults')
    root = toy_coco(2, 2)
    cfg = write_toy_config(str(tmp / 'tiny.py'), TOY_CONFIG, root)
    register_all_modules()
    model = MODELS.build(Config.fromfile(cfg).model)
    # a bias towards the first class, so that untrained weights detect
    with torch.no_grad():
        model.roi_head.bbox_head.fc_cls.bias[0] = 8.0
    good = str(tmp / 'good.pth')
    torch.save(dict(state_dict=model.state_dict()), good)
    state = model.state_dict()
    state['roi_head.bbox_head.fc_reg.bias'] = torch.full_like(
        state['roi_head.bbox_head.fc_reg.bias'], float('nan'))
    nan = str(tmp / 'nan_regression.pth')
    torch.save(dict(state_dict=state), nan)
    return dict(root=root, cfg=cfg, good=good, nan=nan, tmp=tmp)


def _exit_message(argv) -> str:
    test = importlib.import_module('tools.test')
    with pytest.raises(SystemExit) as err:
        test.main(argv)
    assert err.value.code not in (0, None)
    return str(err.value.code)


def test_count_non_finite_in_nested_outputs():
    outputs = ([
        torch.tensor([1.0, float('nan')]),
        torch.tensor([float('inf')])
    ], {
        'x': torch.zeros(3),
        'labels': torch.tensor([1, 2])
    })
    assert count_non_finite(outputs) == (2, 6)


def test_nan_box_regression_is_refused_before_evaluating(toy, tmp_path):
    work_dir = str(tmp_path / 'work')
    # the same weights without the NaN evaluate
    test = importlib.import_module('tools.test')
    metrics = test.main([toy['cfg'], toy['good'], '--work-dir', work_dir])
    assert metrics['coco/bbox_mAP'] >= 0

    message = _exit_message(
        [toy['cfg'], toy['nan'], '--work-dir',
         str(tmp_path / 'nan')])
    assert message.startswith('error: the test stopped before evaluating')
    assert 'roi_head.bbox_head: ' in message
    # every image's RoIs x 4 classes x 4 coordinates are NaN
    count = int(message.split('roi_head.bbox_head: ')[1].split()[0])
    assert count > 0 and count % 16 == 0
    assert not osp.exists(osp.join(tmp_path, 'nan', 'metrics.json'))


def test_hook_raises_after_the_last_iteration_only():
    hook = CheckFinitePredictionsHook(head_types=(torch.nn.Linear, ))

    class Runner:
        model = torch.nn.Sequential(torch.nn.Linear(2, 2))
        test_dataloader = [0, 1]

    runner = Runner()
    with torch.no_grad():
        runner.model[0].bias.fill_(float('nan'))
    hook.before_test_epoch(runner)
    runner.model(torch.zeros(3, 2))
    hook.after_test_iter(runner, 0, dict(inputs=[0, 0, 0]))
    runner.model(torch.zeros(1, 2))
    with pytest.raises(
            NonFinitePredictionError,
            match=r'of 4 image\(s\) hold 8 NaN .*\(0: 8 of 8\)'):
        hook.after_test_iter(runner, 1, dict(inputs=[0]))
    # detached: later forwards are not counted
    assert not runner.model[0]._forward_hooks


def test_split_of_crowd_boxes_only_is_refused(toy, tmp_path):
    ann = osp.join(toy['root'], 'annotations', 'instances_val.json')
    with open(ann) as f:
        data = json.load(f)
    for entry in data['annotations']:
        entry['iscrowd'] = 1
    crowd = str(tmp_path / 'crowd.json')
    with open(crowd, 'w') as f:
        json.dump(data, f)
    message = _exit_message([
        toy['cfg'], toy['good'], '--work-dir',
        str(tmp_path / 'work'), '--cfg-options',
        f'test_dataloader.dataset.ann_file={crowd}',
        f'test_evaluator.ann_file={crowd}'
    ])
    assert message.startswith('error: nothing was evaluated')
    assert crowd in message
    n = len(data['annotations'])
    assert f'{n} annotation(s), {n} of them `iscrowd`' in message
    assert not osp.exists(osp.join(tmp_path, 'work', 'metrics.json'))
