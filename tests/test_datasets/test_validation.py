# Copyright (c) dynconv-mmdet contributors. All rights reserved.
import copy
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from dynconv_mmdet.datasets import check_coco_annotations
from dynconv_mmdet.datasets.validation import (IMAGE_CHECK_ENV,
                                               image_check_mode, image_problem)

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


def _encoded(fmt: str = 'PNG', size=(64, 48)) -> bytes:
    pixels = np.random.default_rng(0).integers(
        0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def img_dir(tmp_path):
    root = tmp_path / 'images'
    (root / 'sub').mkdir(parents=True)
    (root / 'a.png').write_bytes(_encoded())
    (root / 'sub' / 'b.png').write_bytes(_encoded())
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


# -- image decoding ---------------------------------------------------------

_CORRUPT = {
    'empty': lambda: b'',
    'not an image': lambda: b'<html>404 Not Found</html>' * 4,
    'cut PNG': lambda: _encoded('PNG')[:300],
    'cut JPEG': lambda: _encoded('JPEG')[:400],
}


@pytest.mark.parametrize('kind', list(_CORRUPT))
def test_corrupt_image_is_found_by_the_header_check(tmp_path, img_dir, kind):
    (tmp_path / 'images' / 'sub' / 'b.png').write_bytes(_CORRUPT[kind]())
    path = _write(tmp_path, VALID)
    message = _raises(
        path,
        '1 of 2 image files',
        'cannot be opened',
        "'sub/b.png'",
        'Replace these files',
        img_prefix=img_dir)
    assert "'a.png'" not in message
    # the same file fails the full decode; existence alone passes
    _raises(
        path,
        'cannot be decoded in full',
        img_prefix=img_dir,
        check_images='full')
    check_coco_annotations(path, img_dir, check_images='exists')
    check_coco_annotations(path, img_dir, check_images='none')


def test_valid_images_pass_every_mode(tmp_path, img_dir):
    path = _write(tmp_path, VALID)
    for mode in ('none', 'exists', 'header', 'full'):
        check_coco_annotations(path, img_dir, check_images=mode)


def test_jpeg_with_trailing_data_is_valid(tmp_path):
    """Data after the end marker (cameras append some) is not truncation."""
    path = tmp_path / 'x.jpg'
    path.write_bytes(_encoded('JPEG') + b'\0' * 4096)
    assert image_problem(str(path)) is None
    assert image_problem(str(path), 'full') is None


def test_image_problem_modes(tmp_path):
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'x')
    assert image_problem(str(tmp_path / 'nope.png')) == 'missing'
    assert image_problem(str(bad), 'exists') is None
    assert 'UnidentifiedImageError' in image_problem(str(bad), 'header')
    assert image_problem(str(bad), 'none') is None


def test_many_corrupt_images_are_listed(tmp_path, img_dir):
    data = _mutated(lambda d: d['images'].extend(
        dict(id=10 + i, file_name=f'bad_{i}.png', width=64, height=48)
        for i in range(70)))
    for i in range(70):
        (tmp_path / 'images' / f'bad_{i}.png').write_bytes(b'x')
    message = _raises(
        _write(tmp_path, data),
        '70 of 72 image files',
        "'bad_0.png'",
        r'\(and 65 more\)',
        img_prefix=img_dir)
    assert 'a.png' not in message


def test_image_check_mode(monkeypatch):
    monkeypatch.delenv(IMAGE_CHECK_ENV, raising=False)
    assert image_check_mode(True) == 'header'
    assert image_check_mode(None) == 'header'
    assert image_check_mode(False) == 'none'
    assert image_check_mode('FULL') == 'full'
    monkeypatch.setenv(IMAGE_CHECK_ENV, 'full')
    assert image_check_mode(True) == 'full'
    assert image_check_mode('exists') == 'exists'  # explicit wins
    monkeypatch.setenv(IMAGE_CHECK_ENV, 'deep')
    with pytest.raises(
            ValueError,
            match='DYNCONV_CHECK_IMAGES.*none, '
            'exists, header, full'):
        image_check_mode(True)
    with pytest.raises(ValueError, match="unknown image check mode 'x'"):
        image_check_mode('x')


def test_environment_selects_the_full_decode(tmp_path, img_dir, monkeypatch):
    """``DYNCONV_CHECK_IMAGES=full`` makes the default check decode every
    image in full."""
    monkeypatch.setenv(IMAGE_CHECK_ENV, 'full')
    (tmp_path / 'images' / 'a.png').write_bytes(_encoded('PNG')[:-20])
    _raises(
        _write(tmp_path, VALID),
        'cannot be decoded in full',
        img_prefix=img_dir)


# -- classes and empty splits -----------------------------------------------


def test_matching_classes_pass(tmp_path):
    path = _write(tmp_path, VALID)
    check_coco_annotations(path, classes=('circle', 'square'))
    # a subset: the other category has no annotations, so nothing is lost
    data = _mutated(lambda d: d['annotations'].pop(0))
    check_coco_annotations(_write(tmp_path, data), classes=('square', ))
    # a subset whose other category has boxes: only when asked for
    check_coco_annotations(
        path, classes=('square', ), ignore_unlisted_categories=True)


def test_unlisted_categories_with_boxes_are_refused(tmp_path):
    """mmdet drops the boxes of categories the config does not list: the
    check names them with their box counts and the opt-out."""
    data = _mutated(lambda d: (
        d['categories'].extend([
            dict(id=3, name='triangle'),
            dict(id=4, name='star'),
            dict(id=5, name='hexagon'),  # no annotations: nothing lost
        ]),
        d['annotations'].extend(
            dict(
                id=10 + i,
                image_id=1,
                category_id=3 + (i == 3),
                bbox=[0, 0, 4, 4]) for i in range(4))))
    path = _write(tmp_path, data)
    message = _raises(
        path,
        '2 categories of the file have annotations',
        re.escape("metainfo.classes: ('circle', 'square')"),
        re.escape("id 3 'triangle' (3 boxes), id 4 'star' (1 box)"),
        "drop their 4 of the file's 6 boxes",
        re.escape('data_check = dict(ignore_unlisted_categories=True)'),
        re.escape('--cfg-options data_check.ignore_unlisted_categories'),
        classes=('circle', 'square'))
    assert 'hexagon' not in message
    # the explicit opt-out; listed classes must still be in the file
    check_coco_annotations(
        path, classes=('circle', 'square'), ignore_unlisted_categories=True)
    _raises(
        path,
        re.escape("Not in the file: ('box',)"),
        classes=('circle', 'box'),
        ignore_unlisted_categories=True)


def test_renamed_classes(tmp_path):
    message = _raises(
        _write(tmp_path, VALID),
        'class names of the config do not match the category names',
        re.escape("Config (metainfo.classes): ('circle', 'box')"),
        re.escape('File ("categories"): (\'circle\', \'square\')'),
        re.escape("Not in the file: ('box',)"),
        classes=('circle', 'box'))
    assert 'metainfo=dict(classes=' in message


def test_classes_in_another_order(tmp_path):
    _raises(
        _write(tmp_path, VALID),
        'in another order',
        re.escape("metainfo=dict(classes=('circle', 'square'))"),
        classes=('square', 'circle'))


def test_repeated_category_name(tmp_path):
    data = _mutated(lambda d: d['categories'][1].update(name='circle'))
    _raises(
        _write(tmp_path, data),
        re.escape("category name(s) ('circle',) appear more than once"),
        classes=('circle', ))


def test_empty_split(tmp_path):
    data = _mutated(lambda d: (d.update(images=[]), d.update(annotations=[])))
    _raises(
        _write(tmp_path, data), 'lists no images', 'split is empty',
        'val_cfg to None')


def test_filter_cfg_that_empties_the_training_set(tmp_path):
    path = _write(tmp_path, VALID)
    filter_cfg = dict(filter_empty_gt=True, min_size=32)
    check_coco_annotations(
        path,
        classes=('circle', ),
        filter_cfg=filter_cfg,
        ignore_unlisted_categories=True)
    data = _mutated(lambda d: d.update(annotations=[]))
    _raises(
        _write(tmp_path, data),
        'all 2 images would be filtered out',
        'filter_empty_gt=True drops',
        filter_cfg=filter_cfg)
    _raises(
        path,
        'all 2 images would be filtered out',
        'min_size=100 drops',
        filter_cfg=dict(filter_empty_gt=False, min_size=100))
    # images without annotations are fine when they are not filtered
    check_coco_annotations(
        _write(tmp_path, data), filter_cfg=dict(filter_empty_gt=False))
