# Copyright (c) dynconv-mmdet contributors. All rights reserved.
import copy
import json
import re

import pytest

from dynconv_mmdet.datasets import check_coco_annotations

VALID = dict(
    images=[
        dict(id=1, file_name='a.png', width=64, height=48),
        dict(id=2, file_name='sub/b.png', width=64, height=48),
    ],
    annotations=[
        dict(id=1, image_id=1, category_id=1, bbox=[1, 2, 10, 20]),
        dict(id=2, image_id=2, category_id=2, bbox=[0.5, 0, 3.5, 4]),
    ],
    categories=[dict(id=1, name='circle'),
                dict(id=2, name='square')])


@pytest.fixture
def img_dir(tmp_path):
    root = tmp_path / 'images'
    (root / 'sub').mkdir(parents=True)
    (root / 'a.png').write_bytes(b'x')
    (root / 'sub' / 'b.png').write_bytes(b'x')
    return str(root)


def _write(tmp_path, data, name='ann.json'):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def _mutated(fn):
    data = copy.deepcopy(VALID)
    fn(data)
    return data


def _raises(path, *patterns, exc=ValueError, **kwargs):
    with pytest.raises(exc) as e:
        check_coco_annotations(path, **kwargs)
    message = str(e.value)
    assert path in message, message
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)
    return message


def test_valid_file_passes(tmp_path, img_dir):
    path = _write(tmp_path, VALID)
    assert check_coco_annotations(path, img_dir) is None
    assert check_coco_annotations(path) is None  # no image check
    assert check_coco_annotations(
        path, str(tmp_path / 'nowhere'), check_images=False) is None


def test_missing_file(tmp_path):
    _raises(
        str(tmp_path / 'missing.json'),
        'does not exist',
        exc=FileNotFoundError)


def test_invalid_json_reports_position(tmp_path):
    path = _write(tmp_path, '{\n  "images": [],\n  "annotations": [,]\n}')
    _raises(path, 'not valid JSON', 'line 3, column 19')


def test_top_level(tmp_path):
    _raises(_write(tmp_path, '[]'), 'top level must be a JSON object')
    data = _mutated(lambda d: (d.pop('annotations'), d.pop('categories')))
    _raises(
        _write(tmp_path, data), 'missing top-level key\\(s\\) annotations, '
        'categories')
    data = _mutated(lambda d: d.update(images={}))
    _raises(_write(tmp_path, data), '"images" must be a list')


@pytest.mark.parametrize('key, field', [
    ('images', 'id'),
    ('images', 'file_name'),
    ('images', 'width'),
    ('images', 'height'),
    ('annotations', 'id'),
    ('annotations', 'image_id'),
    ('annotations', 'category_id'),
    ('annotations', 'bbox'),
    ('categories', 'id'),
    ('categories', 'name'),
])
def test_required_fields(tmp_path, key, field):
    data = _mutated(lambda d: d[key][1].pop(field))
    _raises(
        _write(tmp_path, data), f'1 of 2 "{key}" entries are malformed',
        f'#1.* lacks {field}')


def test_non_object_entry(tmp_path):
    data = _mutated(lambda d: d['categories'].append('dog'))
    _raises(_write(tmp_path, data), '#2 is a str, not an object')


def test_duplicate_ids(tmp_path):
    data = _mutated(lambda d: d['images'][1].update(id=1))
    _raises(_write(tmp_path, data), 'duplicate "images" ids: 1')


def test_empty_categories(tmp_path):
    data = _mutated(lambda d:
                    (d.update(categories=[]), d.update(annotations=[])))
    _raises(_write(tmp_path, data), '"categories" is empty')


def test_unknown_image_and_category_ids(tmp_path):
    data = _mutated(lambda d: d['annotations'][0].update(image_id=7))
    _raises(
        _write(tmp_path, data), 'refer to image ids',
        'annotation 1 -> image_id 7')
    data = _mutated(lambda d: d['annotations'][1].update(category_id=80))
    _raises(
        _write(tmp_path, data), 'category ids', r'known: \[1, 2\]',
        'annotation 2 -> category_id 80')


@pytest.mark.parametrize('bbox, problem', [
    ([1, 2, 3], 'not a list of 4 numbers'),
    ('1 2 3 4', 'not a list of 4 numbers'),
    ([1, 2, 'w', 4], 'non-numeric'),
    ([1, 2, None, 4], 'non-numeric'),
    ([1, 2, -3, 4], 'negative width or height'),
])
def test_malformed_bbox(tmp_path, bbox, problem):
    data = _mutated(lambda d: d['annotations'][1].update(bbox=bbox))
    _raises(
        _write(tmp_path, data), r'1 malformed bbox\(es\)', 'annotation 2 bbox',
        problem)


def test_missing_images_are_listed(tmp_path, img_dir):
    data = _mutated(lambda d: d['images'].extend(
        dict(id=10 + i, file_name=f'gone_{i}.png', width=1, height=1)
        for i in range(7)))
    message = _raises(
        _write(tmp_path, data),
        '7 of 9 image files',
        "'gone_0.png', 'gone_1.png'",
        r'\(and 2 more\)',
        exc=FileNotFoundError,
        img_prefix=img_dir)
    assert img_dir in message
    assert 'gone_6.png' not in message
    # the check can be turned off
    check_coco_annotations(_write(tmp_path, data), img_dir, check_images=False)


def test_missing_image_dir(tmp_path):
    _raises(
        _write(tmp_path, VALID),
        'Image directory',
        exc=FileNotFoundError,
        img_prefix=str(tmp_path / 'nope'))
