# Copyright (c) dynconv-mmdet contributors. All rights reserved.
import importlib
import itertools
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from dynconv_mmdet.datasets import check_coco_annotations
from tools.misc.generate_toy_coco import (CLASSES, PALETTE, area_bucket,
                                          generate_toy_coco, polygon_area)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(ROOT, 'configs', 'toy',
                      'odconv_faster_rcnn_r50_fpn_toy.py')
SIZE = 256
PARAMS = dict(num_train=5, num_val=3, image_size=SIZE, seed=0)


def _load_cli():
    return importlib.import_module('tools.misc.generate_toy_coco')


def _read(path):
    with open(path, 'rb') as f:
        return f.read()


def _snapshot(root):
    """{relative path: bytes} of every file below ``root``."""
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = osp.join(dirpath, name)
            files[osp.relpath(path, root)] = _read(path)
    return files


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('toy') / 'toy_coco')
    return generate_toy_coco(out, **PARAMS)


def _coco(toy, split):
    with open(toy[split]['ann_file']) as f:
        return json.load(f)


def test_layout_and_stats(toy):
    assert len(CLASSES) == 4 and len(PALETTE) == len(CLASSES)
    for split in ('train', 'val'):
        info = toy[split]
        assert info['ann_file'] == osp.join(toy['out_dir'], 'annotations',
                                            f'instances_{split}.json')
        assert info['img_dir'] == osp.join(toy['out_dir'], split)
        coco = _coco(toy, split)
        assert info['num_images'] == len(
            coco['images']) == PARAMS[f'num_{split}']
        assert info['num_annotations'] == len(coco['annotations'])
        assert [c['id'] for c in coco['categories']] == [1, 2, 3, 4]
        assert tuple(c['name'] for c in coco['categories']) == CLASSES
        for img in coco['images']:
            assert img['file_name'].endswith('.png')
            with Image.open(osp.join(info['img_dir'], img['file_name'])) as im:
                assert im.format == 'PNG' and im.mode == 'RGB'
                assert im.size == (img['width'], img['height']) == (SIZE, SIZE)
        check_coco_annotations(info['ann_file'], info['img_dir'])


def test_every_area_bucket_in_both_splits(toy):
    for split in ('train', 'val'):
        coco = _coco(toy, split)
        counts = {'small': 0, 'medium': 0, 'large': 0}
        for ann in coco['annotations']:
            counts[area_bucket(ann['area'])] += 1
        assert all(n > 0 for n in counts.values()), (split, counts)
        assert counts == toy[split]['area_buckets']
        # COCO's own bucket limits
        areas = np.array([a['area'] for a in coco['annotations']])
        assert (areas < 32**2).any() and (areas > 96**2).any()
        assert ((areas >= 32**2) & (areas <= 96**2)).any()


def test_polygons_boxes_areas_and_pixels(toy):
    for split in ('train', 'val'):
        coco = _coco(toy, split)
        images = {img['id']: img for img in coco['images']}
        api = COCO(toy[split]['ann_file'])
        by_image = {}
        for ann in coco['annotations']:
            assert ann['iscrowd'] == 0
            assert len(ann['segmentation']) == 1
            poly = ann['segmentation'][0]
            xs, ys = np.array(poly[0::2]), np.array(poly[1::2])
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0
            # the box is the tight box of the polygon, inside the image
            assert xs.min() == pytest.approx(x, abs=1e-6)
            assert ys.min() == pytest.approx(y, abs=1e-6)
            assert xs.max() == pytest.approx(x + w, abs=0.011)
            assert ys.max() == pytest.approx(y + h, abs=0.011)
            img = images[ann['image_id']]
            assert x >= 0 and y >= 0
            assert x + w <= img['width'] and y + h <= img['height']
            assert ann['area'] == pytest.approx(polygon_area(poly), abs=0.01)
            assert ann['area'] <= w * h
            # the rasterised polygon has (about) the polygon area
            mask = api.annToMask(ann).astype(bool)
            assert abs(mask.sum() - ann['area']) <= 0.1 * ann['area'] + 10
            # and it covers the drawn shape: its pixels have the class colour
            pixels = np.asarray(
                Image.open(osp.join(toy[split]['img_dir'],
                                    img['file_name'])).convert('RGB'))
            mean = pixels[mask].astype(float).mean(axis=0)
            dist = np.linalg.norm(np.array(PALETTE, float) - mean, axis=1)
            assert int(dist.argmin()) == ann['category_id'] - 1
            by_image.setdefault(ann['image_id'], []).append(ann['bbox'])
        # objects never overlap, so every polygon is a full visible mask
        for boxes in by_image.values():
            for a, b in itertools.combinations(boxes, 2):
                assert (a[0] + a[2] < b[0] or b[0] + b[2] < a[0]
                        or a[1] + a[3] < b[1] or b[1] + b[3] < a[1])


def test_deterministic(toy, tmp_path):
    again = generate_toy_coco(str(tmp_path / 'again'), **PARAMS)
    assert _snapshot(again['out_dir']) == _snapshot(toy['out_dir'])
    # the val split does not depend on the number of training images
    other = generate_toy_coco(
        str(tmp_path / 'other'), **dict(PARAMS, num_train=2))
    assert _read(other['val']['ann_file']) == _read(toy['val']['ann_file'])
    assert _read(other['train']['ann_file']) != _read(toy['train']['ann_file'])
    # another seed gives another set
    seeded = generate_toy_coco(
        str(tmp_path / 'seed1'), **dict(PARAMS, num_train=1, seed=1))
    assert _read(seeded['val']['ann_file']) != _read(toy['val']['ann_file'])


def test_pycocotools_loads(toy):
    api = COCO(toy['val']['ann_file'])
    assert api.getCatIds() == [1, 2, 3, 4]
    assert len(api.getImgIds()) == PARAMS['num_val']
    ann_ids = api.getAnnIds(imgIds=[1])
    assert len(ann_ids) >= 3
    assert api.annToMask(api.loadAnns(ann_ids[0])[0]).shape == (SIZE, SIZE)


def test_mmdet_dataset_with_pipeline(toy):
    """The toy config's dataset (mmdet's CocoDataset with the generator's
    classes and palette as ``metainfo``) reads the set, masks included."""
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    cfg = Config.fromfile(TOY_CONFIG)
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        assert loader.dataset.type == 'CocoDataset'
        assert tuple(loader.dataset.metainfo.classes) == CLASSES
        assert [tuple(c)
                for c in loader.dataset.metainfo.palette] == list(PALETTE)
    dataset = DATASETS.build(
        dict(
            type=cfg.train_dataloader.dataset.type,
            metainfo=cfg.train_dataloader.dataset.metainfo,
            data_root=toy['out_dir'],
            ann_file='annotations/instances_train.json',
            data_prefix=dict(img='train/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=4),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                dict(type='Resize', scale=(128, 128), keep_ratio=True),
                dict(type='PackDetInputs')
            ]))
    assert len(dataset) == PARAMS['num_train']
    assert dataset.metainfo['classes'] == CLASSES
    assert dataset.metainfo['palette'] == list(PALETTE)
    coco = _coco(toy, 'train')
    num_objects = sum(a['image_id'] == 1 for a in coco['annotations'])
    sample = dataset[0]
    assert tuple(sample['inputs'].shape) == (3, 128, 128)
    gt = sample['data_samples'].gt_instances
    assert len(gt.bboxes) == num_objects == len(gt.masks)
    assert gt.labels.max() < len(CLASSES)
    assert tuple(gt.masks.masks.shape[1:]) == (128, 128)
    # the config's class order maps category id i + 1 to label i
    first = [a for a in coco['annotations'] if a['image_id'] == 1]
    assert sorted(gt.labels.tolist()) == sorted(a['category_id'] - 1
                                                for a in first)


def test_cli_is_idempotent(tmp_path, capsys):
    cli = _load_cli()
    out = str(tmp_path / 'cli')
    args = [
        '--out', out, '--num-train', '2', '--num-val', '1', '--size', '240',
        '256'
    ]
    assert cli.main(args) == 0
    with open(osp.join(out, 'annotations', 'instances_val.json')) as f:
        img = json.load(f)['images'][0]
    assert (img['height'], img['width']) == (240, 256)
    first = _snapshot(out)
    mtimes = {p: os.stat(osp.join(out, p)).st_mtime_ns for p in first}
    capsys.readouterr()
    assert cli.main(args) == 0
    assert 'nothing to do' in capsys.readouterr().out
    assert {p: os.stat(osp.join(out, p)).st_mtime_ns for p in first} == mtimes
    # other parameters: refused without --force
    assert cli.main(args[:3] + ['3'] + args[4:]) == 1
    assert '--force' in capsys.readouterr().err
    assert _snapshot(out) == first
    # an incomplete set (missing image) is regenerated
    os.remove(osp.join(out, 'train', 'train_000001.png'))
    assert cli.main(args) == 0
    assert _snapshot(out) == first
    # --force with other parameters regenerates, dropping stale images
    assert cli.main(args[:3] + ['1'] + args[4:] + ['--force']) == 0
    assert sorted(os.listdir(osp.join(out, 'train'))) == ['train_000000.png']


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match='too small'):
        generate_toy_coco(str(tmp_path / 'a'), 1, 1, image_size=64)
    with pytest.raises(ValueError, match='num_val'):
        generate_toy_coco(str(tmp_path / 'b'), 1, 0, image_size=SIZE)
    with pytest.raises(ValueError, match='seed'):
        generate_toy_coco(str(tmp_path / 'c'), 1, 1, SIZE, seed=-1)
