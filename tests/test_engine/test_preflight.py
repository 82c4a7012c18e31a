# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Start-up checks (``dynconv_mmdet.engine.preflight``) and how
``tools/train.py`` / ``tools/test.py`` report them."""
import copy
import importlib
import json
import os
import os.path as osp
from types import ModuleType

import pytest
from mmengine.config import Config

from dynconv_mmdet.engine.preflight import (PreflightError, check_config,
                                            check_conv_types, check_pretrained,
                                            registered_conv_types)
from tools.misc.generate_toy_coco import generate_toy_coco

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(REPO, 'configs', 'toy',
                      'odconv_faster_rcnn_r50_fpn_toy.py')
COCO_CONFIG = osp.join(REPO, 'configs', 'odconv_faster_rcnn_r50_fpn_1x.py')


def _load_tool(name: str) -> ModuleType:
    return importlib.import_module(f'tools.{name}')


def _fake_runner(train: ModuleType, monkeypatch) -> list:
    """Make ``tools/train.py`` build a runner that only records: the list
    gets the config built and ``'trained'``."""
    built = []

    class _FakeRunner:

        def train(self):
            built.append('trained')

    monkeypatch.setattr(train.RUNNERS, 'build',
                        lambda cfg: built.append(cfg) or _FakeRunner())
    return built


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('toy_coco'))
    generate_toy_coco(root, num_train=3, num_val=2, image_size=224, seed=0)
    return root


def _toy_cfg(root: str) -> Config:
    """The toy config pointed at ``root``."""
    cfg = Config.fromfile(TOY_CONFIG)
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = root + '/'
    cfg.test_evaluator.ann_file = osp.join(root, 'annotations',
                                           'instances_val.json')
    return cfg


def _copy_set(src: str, dst: str) -> str:
    import shutil
    shutil.copytree(src, dst)
    return dst


def test_valid_toy_config_passes(toy_root):
    cfg = _toy_cfg(toy_root)
    check_config(cfg, splits=('train', 'val', 'test'))


def test_missing_data_root(tmp_path):
    cfg = _toy_cfg(str(tmp_path / 'nowhere'))
    with pytest.raises(PreflightError) as info:
        check_config(cfg, splits=('train', ))
    msg = str(info.value)
    assert 'train_dataloader.dataset: data_root' in msg
    assert str(tmp_path / 'nowhere') in msg
    assert 'generate_toy_coco.py' in msg


def test_missing_annotation_file(toy_root, tmp_path):
    root = _copy_set(toy_root, str(tmp_path / 'set'))
    os.remove(osp.join(root, 'annotations', 'instances_train.json'))
    with pytest.raises(PreflightError) as info:
        check_config(_toy_cfg(root), splits=('train', 'test'))
    msg = str(info.value)
    assert 'instances_train.json' in msg and 'does not exist' in msg
    # the test split is fine and not reported
    assert 'test_dataloader' not in msg


def test_annotation_not_json(toy_root, tmp_path):
    root = _copy_set(toy_root, str(tmp_path / 'set'))
    with open(osp.join(root, 'annotations', 'instances_val.json'), 'w') as f:
        f.write('{"images": [')
    with pytest.raises(PreflightError) as info:
        check_config(_toy_cfg(root), splits=('test', ))
    msg = str(info.value)
    assert 'test_dataloader.dataset' in msg
    assert 'not valid JSON' in msg


@pytest.mark.parametrize('broken', ['no_categories', 'no_bbox'])
def test_annotation_missing_coco_fields(toy_root, tmp_path, broken):
    root = _copy_set(toy_root, str(tmp_path / 'set'))
    ann_file = osp.join(root, 'annotations', 'instances_train.json')
    with open(ann_file) as f:
        data = json.load(f)
    if broken == 'no_categories':
        del data['categories']
        expected = 'categories'
    else:
        del data['annotations'][0]['bbox']
        expected = 'bbox'
    with open(ann_file, 'w') as f:
        json.dump(data, f)
    with pytest.raises(PreflightError) as info:
        check_config(_toy_cfg(root), splits=('train', ))
    msg = str(info.value)
    assert 'instances_train.json' in msg and expected in msg


def test_missing_image_file(toy_root, tmp_path):
    root = _copy_set(toy_root, str(tmp_path / 'set'))
    with open(osp.join(root, 'annotations', 'instances_train.json')) as f:
        first = json.load(f)['images'][0]['file_name']
    os.remove(osp.join(root, 'train', first))
    with pytest.raises(PreflightError) as info:
        check_config(_toy_cfg(root), splits=('train', ))
    msg = str(info.value)
    assert first in msg and 'missing' in msg
    # the image check can be turned off
    check_config(_toy_cfg(root), splits=('train', ), check_images=False)


def test_registered_conv_types_lists_mmcv_and_plugin_layers():
    import dynconv_mmdet  # noqa: F401
    names = registered_conv_types()
    for expected in ('Conv2d', 'DCN', 'DCNv2', 'CondConv2d', 'DyConv2d',
                     'ODConv2d'):
        assert expected in names
    assert 'BN' not in names and 'ReLU' not in names


def test_unknown_conv_type_anywhere_in_model(toy_root):
    cfg = _toy_cfg(toy_root)
    cfg.model.neck.conv_cfg = dict(type='ODConv2dd')
    cfg.model.backbone.dcn = dict(type='DCNv3', deform_groups=1)
    with pytest.raises(PreflightError) as info:
        check_config(cfg, splits=('train', ))
    msg = str(info.value)
    assert "model.neck.conv_cfg: unknown conv layer type 'ODConv2dd'" in msg
    assert "model.backbone.dcn: unknown conv layer type 'DCNv3'" in msg
    assert 'ODConv2d, ' in msg and 'DCNv2' in msg and 'CondConv2d' in msg
    assert msg.startswith('2 problem(s)')


def test_known_conv_types_pass():
    model = dict(
        backbone=dict(dcn=dict(type='DCNv2'), conv_cfg=dict(type='ODConv2d')),
        neck=dict(conv_cfg=None, extra=[dict(conv_cfg=dict(type='Conv'))]))
    import dynconv_mmdet  # noqa: F401
    assert check_conv_types(model) == []
    model['neck']['extra'][0]['conv_cfg']['type'] = 'Convv'
    problems = check_conv_types(model)
    assert len(problems) == 1 and 'model.neck.extra[0].conv_cfg' in problems[0]


def test_missing_pretrained_checkpoint(tmp_path):
    missing = str(tmp_path / 'checkpoints' / 'odconv1x_resnet50_in1k.pth')
    model = dict(
        backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=missing)),
        neck=dict(init_cfg=[
            dict(type='Xavier'),
            dict(type='Pretrained', checkpoint='torchvision://resnet50')
        ]))
    problems = check_pretrained(model)
    assert len(problems) == 1
    msg = problems[0]
    assert missing in msg
    assert 'projects/classification' in msg
    assert 'tools/model_converters' in msg
    assert '--cfg-options model.backbone.init_cfg=None' in msg
    # an existing file is fine
    os.makedirs(osp.dirname(missing))
    open(missing, 'wb').close()
    assert check_pretrained(model) == []


def test_coco_config_reports_every_problem(tmp_path, monkeypatch):
    """The real COCO config on a machine without COCO and checkpoints."""
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(COCO_CONFIG)
    with pytest.raises(PreflightError) as info:
        check_config(cfg)
    msg = str(info.value)
    assert "'checkpoints/odconv1x_resnet50_in1k.pth' does not exist" in msg
    assert "data_root 'data/coco/' does not exist" in msg
    assert 'train_dataloader' in msg and 'val_dataloader' in msg


def test_train_tool_stops_before_building_the_runner(tmp_path, monkeypatch,
                                                     capsys):
    monkeypatch.chdir(tmp_path)
    train = _load_tool('train')
    built = []
    monkeypatch.setattr(train.RUNNERS, 'build', built.append)
    with pytest.raises(SystemExit) as info:
        train.main([COCO_CONFIG, '--work-dir', str(tmp_path / 'work')])
    msg = str(info.value.code)
    assert msg.startswith('error: ')
    assert 'odconv1x_resnet50_in1k.pth' in msg
    assert 'model.backbone.init_cfg=None' in msg
    assert not built


def test_train_tool_from_scratch_override(toy_root, tmp_path, monkeypatch):
    """`--cfg-options model.backbone.init_cfg=None` removes the checkpoint
    requirement: the runner is built."""
    monkeypatch.chdir(tmp_path)
    train = _load_tool('train')
    built = _fake_runner(train, monkeypatch)
    toy_cfg = _toy_cfg(toy_root)
    cfg_file = str(tmp_path / 'cfg.py')
    toy_cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint='checkpoints/none.pth')
    toy_cfg.dump(cfg_file)
    with pytest.raises(SystemExit):
        train.main([cfg_file])
    train.main([cfg_file, '--cfg-options', 'model.backbone.init_cfg=None'])
    assert built[-1] == 'trained'
    assert built[0].model.backbone.init_cfg is None
    assert built[0].work_dir == osp.join('./work_dirs', 'cfg')


def test_train_tool_amp_needs_cuda(monkeypatch):
    import torch
    train = _load_tool('train')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit) as info:
        train.main([COCO_CONFIG, '--amp'])
    assert '--amp' in str(info.value.code)
    assert 'CUDA' in str(info.value.code)


def test_test_tool_missing_checkpoint(toy_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    test_tool = _load_tool('test')
    cfg_file = str(tmp_path / 'cfg.py')
    _toy_cfg(toy_root).dump(cfg_file)
    with pytest.raises(SystemExit) as info:
        test_tool.main([cfg_file, 'missing.pth'])
    assert "'missing.pth' does not exist" in str(info.value.code)


def test_preflight_error_is_a_value_error():
    assert issubclass(PreflightError, ValueError)
    assert copy.copy(PreflightError('x')).args == ('x', )


# -- bad data found at start-up (corrupt images, classes, empty splits) ----


def _first_image(root: str, split: str = 'train') -> str:
    with open(osp.join(root, 'annotations', f'instances_{split}.json')) as f:
        return json.load(f)['images'][0]['file_name']


def test_corrupt_image_is_found_at_start_up(toy_root, tmp_path):
    root = _copy_set(toy_root, str(tmp_path / 'set'))
    name = _first_image(root)
    with open(osp.join(root, 'train', name), 'r+b') as f:
        f.truncate(200)  # a cut download: the header survives
    with pytest.raises(PreflightError) as info:
        check_config(_toy_cfg(root), splits=('train', ))
    msg = str(info.value)
    assert 'train_dataloader.dataset' in msg
    assert f"'{name}'" in msg and 'cannot be opened' in msg
    assert 'Replace these files' in msg
    # only the existence check: passes
    check_config(_toy_cfg(root), splits=('train', ), check_images='exists')


def test_renamed_classes_are_reported_with_both_lists(toy_root):
    cfg = _toy_cfg(toy_root)
    renamed = ('circle', 'box', 'triangle', 'star')
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.dataset.metainfo = dict(classes=renamed)
    with pytest.raises(PreflightError) as info:
        check_config(cfg, splits=('train', 'test'))
    msg = str(info.value)
    assert msg.count('do not match the category names') == 2
    assert str(renamed) in msg
    assert "('circle', 'square', 'triangle', 'star')" in msg
    assert "Not in the file: ('box',)" in msg
    assert 'metainfo=dict(classes=' in msg


def test_dataset_class_names_are_used_without_metainfo(toy_root):
    """No ``metainfo``: mmdet's CocoDataset selects its 80 COCO classes,
    none of which the toy file has."""
    cfg = _toy_cfg(toy_root)
    cfg.train_dataloader.dataset.pop('metainfo')
    with pytest.raises(PreflightError) as info:
        check_config(cfg, splits=('train', ))
    msg = str(info.value)
    assert "'person'" in msg and 'Not in the file' in msg


def test_empty_validation_set(toy_root, tmp_path):
    root = _copy_set(toy_root, str(tmp_path / 'set'))
    ann_file = osp.join(root, 'annotations', 'instances_val.json')
    with open(ann_file) as f:
        data = json.load(f)
    data.update(images=[], annotations=[])
    with open(ann_file, 'w') as f:
        json.dump(data, f)
    with pytest.raises(PreflightError) as info:
        check_config(_toy_cfg(root), splits=('train', 'test'))
    msg = str(info.value)
    assert 'test_dataloader.dataset' in msg
    assert 'lists no images' in msg and 'split is empty' in msg
    assert 'train_dataloader' not in msg


def test_invalid_image_check_mode_from_the_environment(toy_root, monkeypatch):
    monkeypatch.setenv('DYNCONV_CHECK_IMAGES', 'everything')
    with pytest.raises(
            PreflightError, match="unknown image check mode "
            "'everything'"):
        check_config(_toy_cfg(toy_root), splits=('train', ))


def test_train_tool_check_images_flag(toy_root, tmp_path, monkeypatch):
    """`--check-images` reaches the start-up check; a corrupt image stops
    tools/train.py before the runner is built."""
    root = _copy_set(toy_root, str(tmp_path / 'set'))
    name = _first_image(root)
    with open(osp.join(root, 'train', name), 'wb') as f:
        f.write(b'not an image')
    monkeypatch.chdir(tmp_path)
    cfg_file = str(tmp_path / 'cfg.py')
    _toy_cfg(root).dump(cfg_file)
    train = _load_tool('train')
    built = []

    class _FakeRunner:

        def train(self):
            built.append('trained')

    def build(cfg):
        built.append(cfg)
        return _FakeRunner()

    monkeypatch.setattr(train.RUNNERS, 'build', build)
    with pytest.raises(SystemExit) as info:
        train.main([cfg_file])
    assert str(info.value.code).startswith('error: ')
    assert name in str(info.value.code)
    assert not built
    with pytest.raises(SystemExit) as info:
        train.main([cfg_file, '--check-images', 'full'])
    assert 'cannot be decoded in full' in str(info.value.code)
    train.main([cfg_file, '--check-images', 'exists'])
    assert built[-1] == 'trained'


# -- boxes mmdet would drop, EXIF-rotated images ---------------------------


def test_unlisted_categories_are_refused_at_start_up(toy_root, tmp_path,
                                                     monkeypatch):
    """A config that lists only some of the file's categories would lose the
    others' boxes: refused, unless the config opts out explicitly."""
    with open(osp.join(toy_root, 'annotations', 'instances_train.json')) as f:
        data = json.load(f)
    counts = {
        cat['name']:
        sum(a['category_id'] == cat['id'] for a in data['annotations'])
        for cat in data['categories']
    }
    assert counts['triangle'] and counts['star']
    cfg = _toy_cfg(toy_root)
    cfg.train_dataloader.dataset.metainfo = dict(classes=('circle', 'square'))
    with pytest.raises(PreflightError) as info:
        check_config(cfg, splits=('train', ))
    msg = str(info.value)
    assert 'train_dataloader.dataset' in msg
    for name in ('triangle', 'star'):
        boxes = f'{counts[name]} box' + ('' if counts[name] == 1 else 'es')
        assert f"'{name}' ({boxes})" in msg
    dropped = counts['triangle'] + counts['star']
    assert (f"drop their {dropped} of the file's {len(data['annotations'])} "
            'boxes') in msg
    assert 'data_check = dict(ignore_unlisted_categories=True)' in msg
    # the opt-out: in the config, or as an argument
    check_config(cfg, splits=('train', ), ignore_unlisted_categories=True)
    cfg.data_check = dict(ignore_unlisted_categories=True)
    check_config(cfg, splits=('train', ))
    # a misspelt option or value is reported, not ignored
    cfg.data_check = dict(ignore_unlisted_category=True)
    with pytest.raises(PreflightError, match='unknown option'):
        check_config(cfg, splits=('train', ))
    cfg.data_check = dict(ignore_unlisted_categories='yes')
    with pytest.raises(PreflightError, match='must be True or False'):
        check_config(cfg, splits=('train', ))

    # tools/train.py: `--cfg-options` sets the opt-out
    monkeypatch.chdir(tmp_path)
    cfg.pop('data_check')
    cfg_file = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_file)
    train = _load_tool('train')
    built = _fake_runner(train, monkeypatch)
    with pytest.raises(SystemExit) as info:
        train.main([cfg_file])
    assert "'star'" in str(info.value.code) and not built
    train.main([
        cfg_file, '--cfg-options', 'data_check.ignore_unlisted_categories=True'
    ])
    assert built[-1] == 'trained'


def test_exif_rotated_image_is_found_at_start_up(toy_root, tmp_path):
    """A photo whose EXIF orientation turns it by 90 degrees no longer fits
    its annotated width / height; the pipeline's loader decides."""
    import numpy as np
    from PIL import Image

    root = _copy_set(toy_root, str(tmp_path / 'set'))
    ann_file = osp.join(root, 'annotations', 'instances_train.json')
    with open(ann_file) as f:
        data = json.load(f)
    first = data['images'][0]
    first.update(width=224, height=160)
    with open(ann_file, 'w') as f:
        json.dump(data, f)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((160, 224, 3), np.uint8)).save(
        osp.join(root, 'train', first['file_name']),
        'PNG',
        exif=exif.tobytes())
    cfg = _toy_cfg(root)
    with pytest.raises(PreflightError) as info:
        check_config(cfg, splits=('train', ))
    msg = str(info.value)
    assert (f"'{first['file_name']}' (annotation 224x160, decoded 160x224 "
            'after its EXIF orientation 6)') in msg
    # a loader that ignores the orientation decodes the stored size
    cfg.train_dataloader.dataset.pipeline[0].color_type = (
        'color_ignore_orientation')
    check_config(cfg, splits=('train', ))


@pytest.mark.parametrize('option, expected', [
    ('model.backbone.out_indices=[1,2,3]', 'set model.neck.in_channels='
     '[512, 1024, 2048] or change model.backbone.out_indices'),
    ('model.backbone.frozen_stages=5', 'frozen_stages'),
])
def test_train_tool_refuses_backbone_neck_mismatch(toy_root, tmp_path,
                                                   monkeypatch, option,
                                                   expected):
    """An FPN whose inputs do not match ``out_indices``, or stages out of
    range: refused at start-up, before mmdet fails in the first forward
    (or with an ``AttributeError`` about ``layer5``)."""
    monkeypatch.chdir(tmp_path)
    _copy_set(toy_root, str(tmp_path / 'data' / 'toy_coco'))
    train = _load_tool('train')
    built = []
    monkeypatch.setattr(train.RUNNERS, 'build', built.append)
    with pytest.raises(SystemExit) as info:
        train.main([
            TOY_CONFIG, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options', option
        ])
    msg = str(info.value.code)
    assert msg.startswith('error: ') and expected in msg
    assert not built
