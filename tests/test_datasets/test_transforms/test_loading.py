# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""CheckedLoadImageFromFile: mmcv's LoadImageFromFile whose failures name
the image (mmcv's fails on an empty file with an OpenCV assertion that does
not), put in every runner pipeline by SafeLoadRunner."""
import os.path as osp

import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from mmengine.registry import TRANSFORMS
from PIL import Image

import dynconv_mmdet  # noqa: F401
from dynconv_mmdet.datasets import CheckedLoadImageFromFile, ImageDecodeError

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


@pytest.fixture
def image_file(tmp_path) -> str:
    pixels = np.random.default_rng(0).integers(
        0, 255, (24, 32, 3), dtype=np.uint8)
    path = str(tmp_path / 'good.png')
    Image.fromarray(pixels).save(path)
    return path


def test_registered_in_root_and_visible_from_downstream_scopes():
    from mmdet.registry import TRANSFORMS as MMDET_TRANSFORMS
    from mmpretrain.registry import TRANSFORMS as MMPRETRAIN_TRANSFORMS
    for registry in (TRANSFORMS, MMDET_TRANSFORMS, MMPRETRAIN_TRANSFORMS):
        assert registry.get(
            'CheckedLoadImageFromFile') is CheckedLoadImageFromFile


def test_same_results_as_mmcv(image_file):
    ours = CheckedLoadImageFromFile(to_float32=True)(dict(img_path=image_file))
    theirs = LoadImageFromFile(to_float32=True)(dict(img_path=image_file))
    assert ours.keys() == theirs.keys()
    np.testing.assert_array_equal(ours['img'], theirs['img'])
    assert ours['img'].shape == (24, 32, 3)
    assert ours['img_shape'] == ours['ori_shape'] == (24, 32)


@pytest.mark.parametrize('content', [b'', b'not an image', None])
def test_failure_names_the_file(tmp_path, content):
    path = str(tmp_path / 'broken.png')
    if content is not None:
        with open(path, 'wb') as f:
            f.write(content)
    with pytest.raises(ImageDecodeError) as info:
        CheckedLoadImageFromFile()(dict(img_path=path))
    message = str(info.value)
    assert f'cannot load the image {path!r}' in message
    assert 'DYNCONV_CHECK_IMAGES=full' in message
    assert CheckedLoadImageFromFile(ignore_empty=True)(
        dict(img_path=path)) is None


def test_empty_file_in_a_data_loader_worker(tmp_path, image_file):
    """In training the image is decoded in a worker process: the error the
    main process sees still names the file."""
    from torch.utils.data import DataLoader
    empty = str(tmp_path / 'empty.png')
    open(empty, 'wb').close()
    loader = DataLoader([image_file, empty],
                        batch_size=1,
                        num_workers=1,
                        collate_fn=lambda batch: CheckedLoadImageFromFile()
                        (dict(img_path=batch[0])))
    with pytest.raises(ImageDecodeError) as info:
        list(loader)
    assert 'empty.png' in str(info.value)
    assert 'good.png' not in str(info.value)


def test_use_checked_image_loader_rewrites_nested_pipelines():
    """Every plain loader below a data loader / hook config, nested
    datasets included, keeping its arguments; nothing else changes."""
    from mmcv.transforms import LoadImageFromFile

    from dynconv_mmdet.datasets.transforms import use_checked_image_loader
    dataloader = dict(
        batch_size=2,
        dataset=dict(
            type='MultiImageMixDataset',
            dataset=dict(
                type='CocoDataset',
                pipeline=[
                    dict(type='LoadImageFromFile', backend_args=None),
                    dict(type='LoadAnnotations', with_bbox=True)
                ]),
            pipeline=[dict(type='Mosaic', img_scale=(64, 64))]))
    hooks = [
        dict(
            type='PipelineSwitchHook',
            switch_pipeline=[
                dict(type=LoadImageFromFile, to_float32=True),
                dict(type='PackDetInputs')
            ])
    ]
    assert use_checked_image_loader(dataloader) == 1
    assert use_checked_image_loader(hooks) == 1
    assert dataloader['dataset']['dataset']['pipeline'][0] == dict(
        type='CheckedLoadImageFromFile', backend_args=None)
    assert dataloader['dataset']['pipeline'] == [
        dict(type='Mosaic', img_scale=(64, 64))
    ]
    assert hooks[0]['switch_pipeline'][0] == dict(
        type='CheckedLoadImageFromFile', to_float32=True)
    assert use_checked_image_loader(dataloader) == 0  # nothing left
