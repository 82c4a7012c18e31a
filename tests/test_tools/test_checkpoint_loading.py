# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Detector checkpoints in the tools: strict by default, safe whatever the
environment.

A tiny Faster R-CNN of one preset (ODConv 1x) meets the weights of another
(ODConv 4x): ``tools/test.py``, ``tools/image_demo.py`` and ``load_from``
in ``tools/train.py`` refuse them, listing the keys, unless partial loading
is asked for. With ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, a checkpoint that
runs code when unpickled is refused by each of them (and by ``--resume``)
and its payload never runs. Checkpoints are built from the models, without
training.
"""
import glob
import importlib
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from dynconv_mmdet.testing.malicious import (UNSAFE_ENV,
                                             save_malicious_checkpoint)
from dynconv_mmdet.testing.toy_detection import write_toy_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(REPO, 'configs', 'toy',
                      'odconv_faster_rcnn_r50_fpn_toy.py')
# what the ODConv 4x weights do to the ODConv 1x model
WRONG_SHAPE = ('backbone.layer1.0.conv1.weight: (4, 64, 64, 3, 3) vs '
               '(1, 64, 64, 3, 3)')
WRONG_KEY = 'backbone.layer1.0.conv1.attention.kernel_fc.weight'


@pytest.fixture(scope='module')
def toy(tmp_path_factory, toy_coco) -> dict:
    tmp = tmp_path_factory.mktemp('strict_loading')
    root = toy_coco(2, 1)
    register_all_modules()
    files = dict(root=root)
    for preset in ('odconv1x', 'odconv4x'):
        cfg = write_toy_config(
            str(tmp / f'{preset}.py'), TOY_CONFIG, root, preset=preset)
        model = MODELS.build(Config.fromfile(cfg).model)
        ckpt = str(tmp / f'{preset}.pth')
        torch.save(
            dict(
                state_dict=model.state_dict(),
                meta=dict(
                    dataset_meta=dict(
                        classes=('circle', 'square', 'triangle', 'star')))),
            ckpt)
        files[preset] = (cfg, ckpt, model.state_dict())
    return files


@pytest.fixture
def evil(toy, tmp_path, monkeypatch):
    """The ODConv 1x weights with a payload; the unsafe environment."""
    marker = str(tmp_path / 'pwned')
    path = save_malicious_checkpoint(
        str(tmp_path / 'evil.pth'), marker, state_dict=toy['odconv1x'][2])
    monkeypatch.setenv(UNSAFE_ENV, '1')
    monkeypatch.chdir(tmp_path)
    yield path
    assert not osp.exists(marker), 'the payload ran'


def _exit_message(main, argv) -> str:
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code not in (0, None)
    return str(err.value.code)


def test_test_tool_refuses_weights_of_another_preset(toy, tmp_path):
    test = importlib.import_module('tools.test')
    cfg, _, _ = toy['odconv1x']
    work_dir = str(tmp_path / 'work')
    message = _exit_message(test.main,
                            [cfg, toy['odconv4x'][1], '--work-dir', work_dir])
    assert message.startswith(f'error: checkpoint {toy["odconv4x"][1]} does '
                              'not fit the model')
    assert WRONG_SHAPE in message and WRONG_KEY in message
    assert '--partial-load' in message
    assert not osp.exists(osp.join(work_dir, 'metrics.json'))


def test_test_tool_partial_load_flag():
    test = importlib.import_module('tools.test')
    strict = test.build_config(test.parse_args([TOY_CONFIG, 'x.pth']))
    assert strict.runner_type == 'SafeLoadRunner' and strict.strict_load
    partial = test.build_config(
        test.parse_args([TOY_CONFIG, 'x.pth', '--partial-load']))
    assert partial.strict_load is False


def test_test_tool_refuses_malicious_weights(toy, evil, tmp_path):
    test = importlib.import_module('tools.test')
    message = _exit_message(
        test.main,
        [toy['odconv1x'][0], evil, '--work-dir',
         str(tmp_path / 'work')])
    assert message.startswith(f'error: refusing to load {evil}')


def test_demo_is_strict_unless_asked(toy, tmp_path):
    demo = importlib.import_module('tools.image_demo')
    image = sorted(glob.glob(osp.join(toy['root'], 'val', '*.png')))[0]
    argv = [
        image, toy['odconv1x'][0], '--weights', toy['odconv4x'][1],
        '--out-dir',
        str(tmp_path / 'out'), '--device', 'cpu', '--no-save-pred'
    ]
    message = _exit_message(demo.main, argv)
    assert WRONG_SHAPE in message and WRONG_KEY in message
    assert not osp.exists(str(tmp_path / 'out'))
    demo.main(argv + ['--partial-load'])
    assert osp.isfile(osp.join(tmp_path, 'out', 'vis', osp.basename(image)))


def test_demo_refuses_malicious_weights(toy, evil, tmp_path):
    demo = importlib.import_module('tools.image_demo')
    image = sorted(glob.glob(osp.join(toy['root'], 'val', '*.png')))[0]
    message = _exit_message(demo.main, [
        image, toy['odconv1x'][0], '--weights', evil, '--out-dir',
        str(tmp_path / 'out'), '--device', 'cpu'
    ])
    assert message.startswith(f'error: refusing to load {evil}')


def test_load_from_in_training_is_strict(toy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train = importlib.import_module('tools.train')
    # tools/train.py stops with the loader's message and exit status 1
    with pytest.raises(
            SystemExit, match='(?s)^error: checkpoint .* vs') as err:
        train.main([
            toy['odconv1x'][0], '--work-dir',
            str(tmp_path / 'work'), '--cfg-options',
            f'load_from={toy["odconv4x"][1]}'
        ])
    assert WRONG_SHAPE in str(err.value)
    assert not glob.glob(str(tmp_path / 'work' / '*.pth'))


@pytest.mark.parametrize('how', ['resume', 'load_from'])
def test_training_refuses_malicious_weights(toy, evil, tmp_path, how):
    train = importlib.import_module('tools.train')
    option = (['--resume', evil]
              if how == 'resume' else ['--cfg-options', f'load_from={evil}'])
    with pytest.raises(SystemExit, match='^error: refusing to load'):
        train.main([toy['odconv1x'][0], '--work-dir',
                    str(tmp_path / 'work')] + option)
