# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Image loading that names the file it fails on.

mmcv's ``LoadImageFromFile`` passes a failed decode on as OpenCV reports it:
``cv2.imdecode`` returns None for a corrupt file and the transform fails on
``None.shape`` (``AttributeError``), or OpenCV raises on an empty file;
neither message names the image, and in a data-loader worker the index of
the sample is lost too. :class:`CheckedLoadImageFromFile` behaves exactly as
``LoadImageFromFile`` (same arguments, same results) and turns any failure
into an :class:`ImageDecodeError` that names the file and says what to do.
:func:`use_checked_image_loader` puts it in a runner's pipelines, which keep
mmdet's ``LoadImageFromFile`` name for its inferencer and for mmdeploy.
"""
from typing import Any, MutableMapping, Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.registry import TRANSFORMS


class ImageDecodeError(OSError):
    """An image file could not be read or decoded."""


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` whose failures name the image file.

    Takes the arguments of ``mmcv.transforms.LoadImageFromFile``
    (``to_float32``, ``color_type``, ``imdecode_backend``, ``ignore_empty``,
    ``backend_args``). With ``ignore_empty=True`` an unreadable image still
    makes the transform return None (the dataset then draws another sample),
    as in mmcv.

    Required keys: ``img_path``. Added keys: ``img`` (H, W, C array),
    ``img_shape``, ``ori_shape``.

    Raises:
        ImageDecodeError: If the file cannot be read or decoded.
    """

    def transform(self, results: dict) -> Optional[dict]:
        """Load ``results['img_path']``; see the class doc."""
        path = results.get('img_path')
        try:
            loaded = super().transform(results)
        except Exception as err:
            if self.ignore_empty:
                return None
            raise ImageDecodeError(self._message(path, err)) from err
        if loaded is not None and loaded.get('img') is None:
            raise ImageDecodeError(self._message(path, None))
        return loaded

    @staticmethod
    def _message(path: Optional[str], err: Optional[Exception]) -> str:
        detail = 'the decoder returned no image' if err is None else (
            f'{type(err).__name__}: {err}')
        return (
            f'cannot load the image {path!r} ({detail}). The file is '
            'missing, truncated or not an image: replace it with a valid '
            'image, or remove it (and its annotations) from the annotation '
            'file. To find every such file before training, run the start-up '
            'check with a full decode: DYNCONV_CHECK_IMAGES=full python '
            'tools/train.py CONFIG.')


_PLAIN_LOADERS = ('LoadImageFromFile', 'mmcv.LoadImageFromFile',
                  LoadImageFromFile)


def use_checked_image_loader(node: Any) -> int:
    """Load images with the checked loader in a pipeline-holding config.

    Our configs keep mmdet's ``LoadImageFromFile`` in their pipelines, the
    name mmdet's ``DetInferencer`` and mmdeploy look for; the runner
    (:class:`~dynconv_mmdet.engine.runner.SafeLoadRunner`) calls this on
    the data loader and custom hook configs it builds, so that training,
    validation and testing name the image they cannot read. Rewrites, in
    place, every ``LoadImageFromFile`` found below ``node`` (nested datasets
    such as ``MultiImageMixDataset`` and ``PipelineSwitchHook``'s pipeline
    included) to :class:`CheckedLoadImageFromFile`, keeping its arguments.

    Args:
        node (dict | list): A data loader / dataset / hook config, or a list
            of them.

    Returns:
        int: How many loaders were replaced.
    """
    count = 0
    if isinstance(node, MutableMapping):
        if node.get('type') in _PLAIN_LOADERS:
            node['type'] = 'CheckedLoadImageFromFile'
            count += 1
        for value in node.values():
            count += use_checked_image_loader(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += use_checked_image_loader(value)
    return count
