# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Checks of the image files that a COCO annotation file lists.

Images are checked according to a mode (:data:`IMAGE_CHECK_MODES`): only
that the files exist, their headers too (default: PIL opens every file and
runs its ``verify()``, which reads a JPEG's header and every chunk of a PNG
without decoding pixels; a JPEG without its end marker is decoded to
confirm it is cut short), or a full decode of every image with PIL and with
OpenCV, the decoder mmcv uses in training (slow; set the environment
variable ``DYNCONV_CHECK_IMAGES=full``). The full decode also fails on what
the decoders only warn about (libjpeg's ``Corrupt JPEG data: ...`` for a
JPEG whose body is damaged, PIL's warnings), naming the file.

From the header on, every image must have the size the annotation file
gives it (``width`` / ``height``) as the training pipeline decodes it:
mmcv's ``LoadImageFromFile`` (``color_type='color'``, the cv2 or pillow
backend) turns an image by its EXIF orientation, so a photo with
orientation 5 to 8 arrives rotated by 90 degrees and its boxes no longer fit.
"""
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Union

from ._common import fmt_list, is_number
from ._decoder_messages import DecoderMessages

#: How thoroughly image files are checked, from none to a full decode.
IMAGE_CHECK_MODES = ('none', 'exists', 'header', 'full')
#: Environment variable that sets the default mode.
IMAGE_CHECK_ENV = 'DYNCONV_CHECK_IMAGES'
_DEFAULT_IMAGE_CHECK = 'header'
_SEQUENTIAL_BELOW = 64  # fewer files than this: no thread pool
_ATTRIBUTION_BATCH = 4096  # decoded again one by one on a decoder message
_EXIF_ORIENTATION = 0x0112
_TRANSPOSING = (5, 6, 7, 8)  # orientations that swap width and height


class ImageReport(NamedTuple):
    """What the check found about one image file.

    Attributes:
        problem (str or None): ``'missing'``, why the file does not decode,
            or None.
        size (tuple or None): ``(width, height)`` of the image as the
            training pipeline gets it (EXIF orientation applied if asked);
            None when not looked at (modes ``'none'`` / ``'exists'``) or on
            a problem.
        orientation (int): The EXIF orientation applied (1: none).
    """
    problem: Optional[str]
    size: Optional[tuple]
    orientation: int = 1


def image_check_mode(check_images: Union[bool, str, None] = True) -> str:
    """The image check mode (one of :data:`IMAGE_CHECK_MODES`).

    Args:
        check_images (bool or str or None): A mode; ``False`` for
            ``'none'``; ``True`` or None for the environment variable
            ``DYNCONV_CHECK_IMAGES`` if set, else ``'header'``.

    Raises:
        ValueError: For an unknown mode (argument or environment).
    """
    if check_images is False:
        return 'none'
    source = 'check_images'
    if check_images is True or check_images is None:
        check_images = os.environ.get(IMAGE_CHECK_ENV, '').strip()
        source = f'the environment variable {IMAGE_CHECK_ENV}'
        if not check_images:
            return _DEFAULT_IMAGE_CHECK
    mode = str(check_images).lower()
    if mode not in IMAGE_CHECK_MODES:
        raise ValueError(
            f'unknown image check mode {check_images!r} (from {source}); '
            f'use one of {", ".join(IMAGE_CHECK_MODES)}.')
    return mode


def image_problem(path: str, mode: str = 'header') -> Optional[str]:
    """What is wrong with the image file ``path``, or None.

    Args:
        path (str): The image file.
        mode (str): ``'exists'``, ``'header'`` (PIL ``open`` + ``verify``)
            or ``'full'`` (also a full decode with PIL and with OpenCV, whose
            warnings are failures too).

    Returns:
        str or None: ``'missing'`` or a description of the decode failure.
    """
    return inspect_images([path], mode)[0].problem


def inspect_images(paths: Sequence[str],
                   mode: str = 'header',
                   exif_orientation: bool = True) -> List[ImageReport]:
    """Check every image file (threads for many files: the time goes into
    reading them).

    In ``'full'`` mode a decoder message (libjpeg's ``Corrupt JPEG data``
    on standard error, a PIL warning) fails the file it came from. The
    messages name no file and threads share standard error, so a batch of
    files that produced any is decoded again one file after the other to
    attribute them.

    Args:
        paths (Sequence[str]): The image files.
        mode (str): One of :data:`IMAGE_CHECK_MODES`.
        exif_orientation (bool): Whether the training pipeline turns images
            by their EXIF orientation (the report's ``size`` then does).

    Returns:
        list[ImageReport]: One per path, in order.
    """

    def inspect(path: str) -> ImageReport:
        return _inspect(path, mode, exif_orientation)

    if mode != 'full':
        return _map(inspect, paths)
    reports: List[ImageReport] = []
    with DecoderMessages() as messages:
        for start in range(0, len(paths), _ATTRIBUTION_BATCH):
            batch = paths[start:start + _ATTRIBUTION_BATCH]
            batch_reports = _map(inspect, batch)
            unattributed = messages.take()
            if unattributed:
                messages.forget()  # the batch is decoded again
                batch_reports = _attributed(batch, inspect, messages,
                                            unattributed)
            reports.extend(batch_reports)
    return reports


def _attributed(paths: Sequence[str], inspect: Callable[[str], ImageReport],
                messages: DecoderMessages,
                unattributed: List[str]) -> List[ImageReport]:
    """Decode ``paths`` one after the other, each report failed by the
    decoder messages written while it was made."""
    reports, attributed = [], False
    for path in paths:
        report = inspect(path)
        found = messages.take()
        attributed = attributed or bool(found)
        reports.append(_with_messages(report, found))
    if not attributed:
        messages.pass_on(unattributed)  # not from a decoder after all
    return reports


def _map(fn: Callable[[str], Any], paths: Sequence[str]) -> List[Any]:
    if len(paths) < _SEQUENTIAL_BELOW:
        return [fn(p) for p in paths]
    workers = min(16, 4 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, paths, chunksize=64))


def _with_messages(report: ImageReport, messages: List[str]) -> ImageReport:
    """``report`` failed by the decoder messages written while it was made."""
    if not messages:
        return report
    warned = f'decoder warning: {"; ".join(messages)}'
    problem = f'{report.problem}; {warned}' if report.problem else warned
    return ImageReport(problem, None, report.orientation)


def _inspect(path: str, mode: str, exif_orientation: bool) -> ImageReport:
    """:class:`ImageReport` of one file (see :func:`inspect_images`)."""
    if mode == 'none':
        return ImageReport(None, None)
    if not osp.isfile(path):
        return ImageReport('missing', None)
    if mode == 'exists':
        return ImageReport(None, None)
    from PIL import Image
    try:
        with Image.open(path) as image:
            image_format = image.format
            width, height = image.size
            orientation = _orientation(image) if exif_orientation else 1
            image.verify()
        # verify() reads every chunk of a PNG but only the header of a
        # JPEG: a JPEG whose end-of-image marker is missing (a cut download)
        # is decoded in full to confirm.
        if mode == 'full' or (image_format == 'JPEG'
                              and not _has_jpeg_end(path)):
            with Image.open(path) as image:
                image.load()
        if mode == 'full':
            return _cv2_report(path, exif_orientation, orientation)
    except Exception as err:  # PIL raises many types on bad data
        return ImageReport(f'{type(err).__name__}: {err}', None)
    if orientation in _TRANSPOSING:
        width, height = height, width
    return ImageReport(None, (width, height), orientation)


def _orientation(image: Any) -> int:
    """The EXIF orientation (1 to 8) of an opened PIL image, read from its
    header only (1 if it has none or it does not parse)."""
    from PIL import Image
    try:
        raw = image.info.get('exif')
        if raw:
            exif = Image.Exif()
            exif.load(raw)
            value = exif.get(_EXIF_ORIENTATION)
        elif hasattr(image, 'tag_v2'):  # TIFF: a tag of the file itself
            value = image.tag_v2.get(_EXIF_ORIENTATION)
        else:
            value = None
    except Exception:  # a corrupt EXIF block: decoders ignore it too
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _has_jpeg_end(path: str, tail: int = 1024) -> bool:
    """Whether the JPEG end-of-image marker is in the last ``tail`` bytes
    (files may carry some trailing data after it)."""
    with open(path, 'rb') as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - tail))
        return b'\xff\xd9' in f.read()


def _cv2_report(path: str, exif_orientation: bool,
                orientation: int) -> ImageReport:
    """Decode ``path`` with OpenCV as mmcv's ``LoadImageFromFile`` does."""
    import cv2
    import numpy as np
    flag = cv2.IMREAD_COLOR
    if not exif_orientation:
        flag |= cv2.IMREAD_IGNORE_ORIENTATION
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, flag) if data.size else None
    if img is None:
        return ImageReport('OpenCV cannot decode it', None)
    return ImageReport(None, (img.shape[1], img.shape[0]), orientation)


def pipeline_applies_exif_orientation(pipeline: Optional[list]) -> bool:
    """Whether a dataset pipeline's image loader (its first
    ``*LoadImageFromFile`` step) turns images by their EXIF orientation.

    mmcv's cv2 and pillow backends do for ``color_type`` ``'color'`` and
    ``'grayscale'`` (the defaults), not for ``'unchanged'`` or
    ``'*_ignore_orientation'``, nor do the turbojpeg and tifffile backends.

    Args:
        pipeline (list, optional): The dataset config's ``pipeline``.

    Returns:
        bool: True also for a pipeline without such a step.
    """
    for step in pipeline or []:
        if not isinstance(step, dict):
            continue
        type_name = step.get('type')
        if not isinstance(type_name, str):
            type_name = getattr(type_name, '__name__', '')
        if type_name.rsplit('.', 1)[-1].endswith('LoadImageFromFile'):
            color_type = step.get('color_type', 'color')
            backend = step.get('imdecode_backend', 'cv2')
            return (color_type in ('color', 'grayscale')
                    and backend in ('cv2', 'pillow', None))
    return True


def check_image_files(ann_file: str,
                      images: List[dict],
                      img_prefix: str,
                      mode: str,
                      exif_orientation: bool = True) -> None:
    """Every image exists under ``img_prefix``, decodes (as deeply as
    ``mode`` says) and has the annotation file's ``width`` / ``height``.

    Args:
        ann_file (str): The annotation file (for the messages).
        images (list[dict]): Its ``images`` entries.
        img_prefix (str): Directory the ``file_name`` are relative to.
        mode (str): One of :data:`IMAGE_CHECK_MODES`.
        exif_orientation (bool): Whether the training pipeline turns images
            by their EXIF orientation (mmcv's default).

    Raises:
        FileNotFoundError: If ``img_prefix`` or image files are missing.
        ValueError: For images that do not decode or have another size.
    """
    if not osp.isdir(img_prefix):
        raise FileNotFoundError(
            f'Image directory {img_prefix!r} (for {ann_file!r}) does not '
            'exist. Check `data_prefix` in the dataset config.')
    names = [img['file_name'] for img in images]
    reports = inspect_images([osp.join(img_prefix, n) for n in names], mode,
                             exif_orientation)
    missing_files = [
        n for n, r in zip(names, reports) if r.problem == 'missing'
    ]
    if missing_files:
        raise FileNotFoundError(
            f'{len(missing_files)} of {len(images)} image files '
            f'listed in {ann_file!r} are missing under {img_prefix!r}: '
            f'{fmt_list(missing_files)}.')
    corrupt = [
        f'{n!r} ({r.problem})' for n, r in zip(names, reports) if r.problem
    ]
    if corrupt:
        how = ('decoded in full without errors or decoder warnings'
               if mode == 'full' else 'opened (header check)')
        raise ValueError(
            f'{len(corrupt)} of {len(images)} image files listed in '
            f'{ann_file!r} under {img_prefix!r} cannot be {how}: '
            f'{fmt_list(corrupt, use_repr=False)}. Replace these files '
            'with valid images, or remove them (and their annotations) from '
            'the annotation file.')
    _check_sizes(ann_file, images, img_prefix, reports)


def _check_sizes(ann_file: str, images: List[dict], img_prefix: str,
                 reports: List[ImageReport]) -> None:
    """The decoded sizes are the annotation file's ``width`` / ``height``."""
    wrong, turned = [], False
    for img, report in zip(images, reports):
        width, height = img['width'], img['height']
        if report.size is None or not (is_number(width) and is_number(height)):
            continue
        if tuple(report.size) == (width, height):
            continue
        text = (f'{img["file_name"]!r} (annotation {width}x{height}, '
                f'decoded {report.size[0]}x{report.size[1]}')
        if report.orientation in _TRANSPOSING:
            turned = True
            text += f' after its EXIF orientation {report.orientation}'
        wrong.append(text + ')')
    if not wrong:
        return
    hint = ('Fix "width" / "height" in the annotation file, or replace the '
            'image with the one that was annotated.')
    if turned:
        hint = (
            'mmcv\'s LoadImageFromFile turns an image by its EXIF '
            'orientation; with orientation 5 to 8 it arrives rotated by 90 '
            'degrees and the boxes do not fit it (AP near 0, or a NaN loss). '
            'If the boxes were drawn on the pixels as stored, rewrite these '
            'images without the EXIF orientation tag (e.g. `exiftool '
            '-Orientation= FILE`, or re-save them with PIL without `exif`), '
            'or load them with `color_type=\'color_ignore_orientation\'` in '
            'the pipeline\'s LoadImageFromFile; if the boxes were drawn on '
            'the rotated image, set "width" / "height" in the annotation '
            'file to the rotated size. Other images: ' + hint)
    raise ValueError(
        f'{len(wrong)} of {len(images)} images listed in {ann_file!r} under '
        f'{img_prefix!r} decode to another size (width x height) than the '
        f'annotation file gives them: {fmt_list(wrong, use_repr=False)}. '
        f'{hint}')
