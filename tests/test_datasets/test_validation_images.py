# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The image checks of ``dynconv_mmdet.datasets.validation``: decoded sizes
against the annotations (EXIF orientation) and decoder warnings in the full
check."""
import io
import json
import os
import re
from typing import Optional, Tuple

import cv2
import numpy as np
import pytest
from PIL import Image

from dynconv_mmdet.datasets.validation import (
    check_coco_annotations, image_problem, inspect_images,
    pipeline_applies_exif_orientation)

_SIZE = (64, 48)  # width, height as stored


def _encoded(fmt: str = 'JPEG',
             size: Tuple[int, int] = _SIZE,
             orientation: Optional[int] = None,
             seed: int = 0) -> bytes:
    """An image of random pixels, with an EXIF orientation if given."""
    pixels = np.random.default_rng(seed).integers(
        0, 255, (size[1], size[0], 3), dtype=np.uint8)
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs['exif'] = exif.tobytes()
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, quality=90, **kwargs)
    return buf.getvalue()


def _corrupt_body_jpeg() -> bytes:
    """A JPEG whose entropy-coded body is zeroed in the middle; its header
    and end marker are intact."""
    data = bytearray(_encoded('JPEG', (96, 64)))
    start = data.index(b'\xff\xda')  # start of scan
    middle = (start + len(data)) // 2
    data[middle:middle + 200] = bytes(200)
    assert data[-2:] == b'\xff\xd9'
    return bytes(data)


def _dataset(tmp_path, files: dict, sizes: Optional[dict] = None) -> tuple:
    """Write ``files`` (name -> bytes) and an annotation file listing them
    with ``sizes`` (name -> (width, height), default the stored size)."""
    img_dir = tmp_path / 'images'
    img_dir.mkdir(exist_ok=True)
    images = []
    for idx, (name, data) in enumerate(files.items(), 1):
        (img_dir / name).write_bytes(data)
        with Image.open(io.BytesIO(data)) as image:
            width, height = (sizes or {}).get(name, image.size)
        images.append(dict(id=idx, file_name=name, width=width, height=height))
    ann = dict(
        images=images,
        annotations=[dict(id=1, image_id=1, category_id=1, bbox=[1, 1, 8, 8])],
        categories=[dict(id=1, name='circle')])
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(ann))
    return str(path), str(img_dir)


# -- sizes and EXIF orientation ---------------------------------------------


@pytest.mark.parametrize('mode', ['header', 'full'])
def test_exif_rotated_image_is_refused(tmp_path, mode):
    """An EXIF orientation of 6 makes mmcv decode the photo rotated: the
    annotation's width / height (the stored size) no longer fit."""
    path, img_dir = _dataset(
        tmp_path,
        {
            'ok.jpg': _encoded(),
            'turned.jpg': _encoded(orientation=6),
            'upside_down.jpg': _encoded(orientation=3),  # same size
        })
    # what training gets: mmcv's default loader turns it
    from mmcv.transforms import LoadImageFromFile
    loaded = LoadImageFromFile()(dict(img_path=f'{img_dir}/turned.jpg'))
    assert loaded['img_shape'] == (64, 48)
    with pytest.raises(ValueError) as info:
        check_coco_annotations(path, img_dir, check_images=mode)
    message = str(info.value)
    assert path in message
    assert '1 of 3 images' in message
    assert ("'turned.jpg' (annotation 64x48, decoded 48x64 after its EXIF "
            'orientation 6)') in message
    assert 'ok.jpg' not in message and 'upside_down.jpg' not in message
    assert 'without the EXIF orientation' in message
    assert '"width" / "height" in the annotation file' in message
    # a loader that ignores the orientation gets the stored size
    check_coco_annotations(
        path, img_dir, check_images=mode, exif_orientation=False)
    # the existence check does not open the files
    check_coco_annotations(path, img_dir, check_images='exists')


def test_annotation_with_the_rotated_size_passes(tmp_path):
    path, img_dir = _dataset(
        tmp_path, {'turned.jpg': _encoded(orientation=8)},
        sizes={'turned.jpg': (48, 64)})
    for mode in ('header', 'full'):
        check_coco_annotations(path, img_dir, check_images=mode)


def test_wrong_size_without_exif(tmp_path):
    path, img_dir = _dataset(
        tmp_path, {'a.png': _encoded('PNG')}, sizes={'a.png': (640, 480)})
    with pytest.raises(ValueError) as info:
        check_coco_annotations(path, img_dir)
    message = str(info.value)
    assert "'a.png' (annotation 640x480, decoded 64x48)" in message
    assert 'EXIF' not in message
    assert 'Fix "width" / "height" in the annotation file' in message


def test_inspect_images_reports_the_decoded_size(tmp_path):
    (tmp_path / 'a.png').write_bytes(_encoded('PNG', orientation=5))
    path = str(tmp_path / 'a.png')
    for mode in ('header', 'full'):
        report, = inspect_images([path], mode)
        assert (report.problem, report.size,
                report.orientation) == (None, (48, 64), 5)
        report, = inspect_images([path], mode, exif_orientation=False)
        assert report.size == (64, 48)
    assert inspect_images([path], 'exists')[0].size is None


@pytest.mark.parametrize('step, turns', [
    (dict(type='CheckedLoadImageFromFile'), True),
    (dict(type='mmdet.LoadImageFromFile', color_type='grayscale'), True),
    (dict(type='LoadImageFromFile', imdecode_backend='pillow'), True),
    (dict(type='LoadImageFromFile',
          color_type='color_ignore_orientation'), False),
    (dict(type='LoadImageFromFile', color_type='unchanged'), False),
    (dict(type='LoadImageFromFile', imdecode_backend='turbojpeg'), False),
])
def test_pipeline_applies_exif_orientation(step, turns):
    pipeline = [step, dict(type='LoadAnnotations', with_bbox=True)]
    assert pipeline_applies_exif_orientation(pipeline) is turns
    assert pipeline_applies_exif_orientation(None) is True


# -- decoder warnings in the full check -------------------------------------


def test_corrupt_body_decodes_with_only_a_libjpeg_warning(tmp_path, capfd):
    """The case to catch: OpenCV returns an image and libjpeg's warning on
    standard error names no file."""
    data = _corrupt_body_jpeg()
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape == (64, 96, 3)
    assert 'Corrupt JPEG data' in capfd.readouterr().err
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # PIL decodes it without a word


def test_full_check_fails_on_decoder_warnings(tmp_path, capfd):
    path, img_dir = _dataset(tmp_path, {
        'ok.jpg': _encoded(),
        'damaged.jpg': _corrupt_body_jpeg(),
    })
    # header and end marker are valid: the header check passes
    check_coco_annotations(path, img_dir, check_images='header')
    with pytest.raises(ValueError) as info:
        check_coco_annotations(path, img_dir, check_images='full')
    message = str(info.value)
    assert '1 of 2 image files' in message
    assert re.search(
        r"'damaged\.jpg' \(decoder warning: Corrupt JPEG data: \d+ "
        'extraneous bytes before marker 0xd9', message), message
    assert 'ok.jpg' not in message
    assert 'Replace these files' in message
    problem = image_problem(f'{img_dir}/damaged.jpg', 'full')
    assert problem.startswith('decoder warning: Corrupt JPEG data')
    assert image_problem(f'{img_dir}/ok.jpg', 'full') is None
    # standard error works again afterwards, and nothing leaked onto it
    assert 'Corrupt JPEG data' not in capfd.readouterr().err
    os.write(2, b'after the check\n')
    assert capfd.readouterr().err == 'after the check\n'


def test_decoder_warnings_are_attributed_among_many_files(tmp_path):
    """Many files are decoded by threads; the message still names the one
    file it came from."""
    files = {f'{i:03d}.jpg': _encoded(seed=i) for i in range(70)}
    files['035.jpg'] = _corrupt_body_jpeg()
    path, img_dir = _dataset(tmp_path, files)
    with pytest.raises(ValueError) as info:
        check_coco_annotations(path, img_dir, check_images='full')
    message = str(info.value)
    assert '1 of 70 image files' in message
    assert "'035.jpg' (decoder warning: Corrupt JPEG data" in message


def test_png_colour_profile_notes_are_not_failures(tmp_path, capfd):
    """libpng's iCCP warnings concern the colour profile, not the pixels
    (common in valid images): passed on, not failed."""
    from PIL import ImageCms  # Pillow's wheels ship littlecms
    profile = ImageCms.ImageCmsProfile(
        ImageCms.createProfile('sRGB')).tobytes()
    buf = io.BytesIO()
    Image.new('L', _SIZE).save(buf, 'PNG', icc_profile=profile)
    path, img_dir = _dataset(tmp_path, {'gray.png': buf.getvalue()})
    capfd.readouterr()
    check_coco_annotations(path, img_dir, check_images='full')
    assert 'libpng warning: iCCP' in capfd.readouterr().err


def test_decoder_messages_sorts_failures_from_notes(capfd):
    """What the capture turns into failures, and what it passes on."""
    import warnings

    from dynconv_mmdet.datasets.validation._decoder_messages import \
        DecoderMessages
    with pytest.warns(UserWarning, match='Possibly corrupt EXIF'), \
            DecoderMessages() as messages:
        os.write(2, b'Corrupt JPEG data: premature end of data segment\n')
        warnings.warn('Image appears to be a malformed MPO file')
        assert messages.take() == [
            'Corrupt JPEG data: premature end of data segment',
            'UserWarning: Image appears to be a malformed MPO file'
        ]
        assert messages.take() == []
        os.write(2, b"libpng warning: iCCP: known incorrect sRGB profile\n")
        warnings.warn('Possibly corrupt EXIF data.  Skipping tag 270')
        warnings.warn('a deprecation', DeprecationWarning)
        assert messages.take() == []
        assert capfd.readouterr().err == ''
    err = capfd.readouterr().err
    assert 'libpng warning: iCCP: known incorrect sRGB profile' in err
    assert 'Corrupt JPEG data' not in err  # reported as a failure instead
