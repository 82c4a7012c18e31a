# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The shipped configs through mmdet's inference entry points and ours.

- every config of the zoo (``configs/metafile.yml``) has the test-pipeline
  loader mmdet's ``DetInferencer`` (and mmdeploy's SDK export) look for,
  checked with ``DetInferencer``'s own pipeline code; the runner still loads
  every image of training, validation and testing with the checked loader;
- one config per detector of the zoo (Faster / Mask R-CNN, RTMDet, YOLOX)
  runs through ``init_detector`` + ``inference_detector`` and
  ``DetInferencer``, which give the same detections; the README's demo
  command runs on the shipped toy config;
- weights of another preset are refused by ``DetInferencer`` and
  ``init_detector`` (naming the opt-out), and load with the opt-out.
"""
import copy
import importlib
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np
import pytest
import torch
import yaml
from mmdet.apis import DetInferencer, inference_detector, init_detector
from mmdet.utils import register_all_modules
from mmengine.config import Config
from PIL import Image

from dynconv_mmdet.checkpoint import PARTIAL_LOAD_ENV, CheckpointMismatchError
from dynconv_mmdet.datasets.transforms import (CheckedLoadImageFromFile,
                                               ImageDecodeError,
                                               use_checked_image_loader)
from dynconv_mmdet.engine.runner import SafeLoadRunner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
with open(osp.join(REPO, 'configs', 'metafile.yml'), encoding='utf-8') as f:
    ZOO = yaml.safe_load(f)['Models']
CONFIGS = [osp.join(REPO, m['Config']) for m in ZOO]
TOY_CONFIG = osp.join(REPO, 'configs', 'toy',
                      'odconv_faster_rcnn_r50_fpn_toy.py')
TOY_CLASSES = ('circle', 'square', 'triangle', 'star')


def _lightest_dynamic_per_detector() -> List[str]:
    """One dynamic config of each detector of the zoo, the one with the
    smallest backbone (CPU time)."""
    chosen: Dict[str, dict] = {}
    for model in ZOO:
        meta = model['Metadata']
        if meta['Backbone Preset'] == 'static':
            continue
        best = chosen.get(meta['Detector'])
        if best is None or meta['Backbone Parameters'] < best['Metadata'][
                'Backbone Parameters']:
            chosen[meta['Detector']] = model
    return [osp.join(REPO, m['Config']) for m in chosen.values()]


def _same_preset_other_kernels() -> Tuple[str, str]:
    """Two Faster R-CNN R-50 configs of one family, 1 and 4 kernels."""
    names = {m['Name']: osp.join(REPO, m['Config']) for m in ZOO}
    return (names['odconv4x_faster_rcnn_r50_fpn_1x'],
            names['odconv_faster_rcnn_r50_fpn_1x'])


@pytest.fixture(scope='module')
def image(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp('image') / 'shapes.png')
    pixels = np.zeros((96, 128, 3), np.uint8)
    pixels[20:60, 30:90] = (210, 40, 40)
    Image.fromarray(pixels).save(path)
    return path


def _save_weights(config: str, path: str) -> str:
    """The weights of the model a config builds (random init)."""
    model = init_detector(config, None, device='cpu')
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(dataset_meta=model.dataset_meta)), path)
    return path


@pytest.mark.parametrize('config', CONFIGS, ids=osp.basename)
def test_test_pipeline_is_det_inferencer_ready(config):
    register_all_modules()
    cfg = Config.fromfile(config)
    inferencer = DetInferencer.__new__(DetInferencer)
    # raises without the loader
    pipeline = inferencer._init_pipeline(copy.deepcopy(cfg))
    assert type(pipeline.transforms[0]).__name__ == 'InferencerLoader'
    # ... and the runner loads every image with the checked loader
    for entry in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loaders = copy.deepcopy(cfg[entry])
        assert use_checked_image_loader(loaders) >= 1, entry
        assert 'LoadImageFromFile' not in repr(loaders).replace(
            'CheckedLoadImageFromFile', '')
    switched = [
        copy.deepcopy(hook) for hook in cfg.get('custom_hooks', [])
        if hook.get('switch_pipeline')
    ]
    use_checked_image_loader(switched)
    for hook in switched:
        assert hook['switch_pipeline'][0]['type'] == (
            'CheckedLoadImageFromFile')


def _every_score(config: str) -> Config:
    """The config, keeping the 5 best detections of its random weights
    whatever their score; its pipelines are the shipped ones."""
    cfg = Config.fromfile(config)
    test_cfg = cfg.model.test_cfg
    test_cfg = test_cfg.rcnn if 'rcnn' in test_cfg else test_cfg
    test_cfg.update(score_thr=0.0, max_per_img=5)
    return cfg


# Mask R-CNN (two-stage, masks) and RTMDet (one-stage): the other detectors'
# test pipelines are these ones (checked above for every config).
@pytest.mark.parametrize(
    'config', [
        c for c in _lightest_dynamic_per_detector()
        if 'mask_rcnn' in c or 'rtmdet' in c
    ],
    ids=osp.basename)
def test_mmdet_inference_apis_on_shipped_config(config, image, tmp_path):
    weights = _save_weights(config, str(tmp_path / 'weights.pth'))
    cfg = _every_score(config)

    model = init_detector(cfg, weights, device='cpu')
    by_function = inference_detector(model, image).pred_instances
    inferencer = DetInferencer(model=cfg, weights=weights, device='cpu')
    by_inferencer = inferencer(
        image, return_datasamples=True,
        pred_score_thr=0.0)['predictions'][0].pred_instances

    assert len(by_function) == len(by_inferencer) > 0
    torch.testing.assert_close(by_function.bboxes, by_inferencer.bboxes)
    torch.testing.assert_close(by_function.scores, by_inferencer.scores)
    assert torch.equal(by_function.labels, by_inferencer.labels)


def test_readme_demo_command_on_toy_config(image, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    weights = _save_weights(TOY_CONFIG, str(tmp_path / 'toy.pth'))
    demo = importlib.import_module('tools.image_demo')
    result = demo.main([
        image, TOY_CONFIG, '--weights', weights, '--out-dir', 'outputs',
        '--device', 'cpu', '--pred-score-thr', '0.0'
    ])
    assert len(result['predictions'][0]['bboxes']) > 0
    drawn = tmp_path / 'outputs' / 'vis' / osp.basename(image)
    with Image.open(drawn) as picture, Image.open(image) as original:
        assert picture.size == original.size
    labels = {label for label in result['predictions'][0]['labels']}
    assert labels <= set(range(len(TOY_CLASSES)))


@pytest.fixture(scope='module')
def wrong_preset_weights(tmp_path_factory) -> Tuple[str, str]:
    """(ODConv 4x config, weights of the ODConv 1x model)."""
    four, one = _same_preset_other_kernels()
    path = str(tmp_path_factory.mktemp('wrong') / 'odconv1x.pth')
    return four, _save_weights(one, path)


def test_inference_apis_refuse_weights_of_another_preset(
        wrong_preset_weights, image, monkeypatch):
    config, weights = wrong_preset_weights
    monkeypatch.delenv(PARTIAL_LOAD_ENV, raising=False)
    for load in (
            lambda: DetInferencer(model=config, weights=weights, device='cpu'),
            lambda: init_detector(config, weights, device='cpu')):
        with pytest.raises(CheckpointMismatchError) as err:
            load()
        message = str(err.value)
        assert 'does not fit the model (FasterRCNN)' in message
        assert 'shape mismatch (key: checkpoint vs model)' in message
        assert 'missing in the checkpoint' in message
        assert f'{PARTIAL_LOAD_ENV}=1' in message

    # the opt-out loads what fits
    monkeypatch.setenv(PARTIAL_LOAD_ENV, '1')
    model = init_detector(config, weights, device='cpu')
    state = torch.load(weights, map_location='cpu', weights_only=True)
    key = 'neck.fpn_convs.0.conv.bias'
    torch.testing.assert_close(model.state_dict()[key],
                               state['state_dict'][key])


ONE_STAGE = [
    c for c in _lightest_dynamic_per_detector()
    if 'rtmdet' in c or 'yolox' in c
]


@pytest.mark.parametrize('config', ONE_STAGE, ids=osp.basename)
def test_empty_image_in_one_stage_training_is_named(config, tmp_path):
    """A 0-byte image in RTMDet's / YOLOX's mosaic training pipelines: the
    runner's checked loader names it (mmcv's raises ``cv2.error``)."""
    from tools.misc.generate_toy_coco import generate_toy_coco
    root = str(tmp_path / 'toy')
    generate_toy_coco(root, num_train=2, num_val=1, image_size=224, seed=0)
    for name in ('train_000000.png', 'train_000001.png'):
        open(osp.join(root, 'train', name), 'wb').close()
    register_all_modules()
    cfg = Config.fromfile(config)
    dataloader = copy.deepcopy(cfg.train_dataloader)
    leaf = dataloader.dataset
    leaf = leaf.get('dataset', leaf)
    leaf.update(
        data_root=root + '/',
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        metainfo=dict(classes=TOY_CLASSES))
    dataloader.update(num_workers=0, persistent_workers=False, batch_size=1)
    loader = SafeLoadRunner.build_dataloader(dataloader, seed=0)
    with pytest.raises(ImageDecodeError, match='train_00000[01].png'):
        loader.dataset[0]
    assert any(
        isinstance(t, CheckedLoadImageFromFile)
        for t in _transforms(loader.dataset))


def _transforms(dataset) -> list:
    found = list(getattr(getattr(dataset, 'pipeline', None), 'transforms', []))
    inner = getattr(dataset, 'dataset', None)
    return found + (_transforms(inner) if inner is not None else [])
