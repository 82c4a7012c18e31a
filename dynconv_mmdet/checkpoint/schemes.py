# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""mmengine's checkpoint loading, through the safe reader.

mmengine reads every checkpoint of a run (``load_from``, ``resume``, the
``Pretrained`` init of any module, ``load_checkpoint``, mmdet's
``DetInferencer(weights=...)`` and ``init_detector``) with the loader its
:class:`~mmengine.runner.checkpoint.CheckpointLoader` registers for the
file name's scheme. Those loaders call ``torch.load`` without
``weights_only`` (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` switches safe
loading off) or, for URLs, through ``torch.hub.load_state_dict_from_url``,
which passes ``weights_only=False`` explicitly; the ``torchvision://``,
``modelzoo://``, ``open-mmlab://`` and ``mmcls://`` loaders call mmengine's
``load_from_http`` and ``torch.load`` by name, past the scheme table.

Importing ``dynconv_mmdet`` calls :func:`register_safe_schemes`, which
registers (``CheckpointLoader.register_scheme(..., force=True)``, the
public extension point) a loader of this module for every scheme mmengine
0.10 knows. Each resolves the file name as mmengine does (model-zoo tables,
``$MMENGINE_HOME``, torch's hub cache for downloads, ``pavi``, the
``petrel`` file backend), then reads the file with
:func:`~.reader.safe_torch_load`: ``weights_only=True``, explicit, whatever
the environment says. A file it refuses raises
:class:`~.errors.CheckpointError` naming where the file came from and what
to do, instead of torch's advice to re-run with safe loading off.

:func:`foreign_schemes` lists the registered loaders that are not ours (a
scheme of a newer mmengine or of another plugin); the tests require it to
be empty.
"""
import logging
import os
import os.path as osp
import tempfile
import zipfile
from typing import Any, Callable, Dict, Optional, Tuple, Union
from urllib.parse import urlparse

import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import get_file_backend
from mmengine.logging import print_log
from mmengine.runner.checkpoint import (CheckpointLoader, _get_mmengine_home,
                                        get_deprecated_model_names,
                                        get_external_models, get_mmcls_models,
                                        get_torchvision_models)

from .errors import CheckpointError
from .reader import safe_torch_load

MapLocation = Optional[Union[str, torch.device, Dict[str, str], Callable]]

#: What a refusal through mmengine's loading adds to the reader's advice.
REFUSAL_HINT = (
    ' mmengine\'s checkpoint loading reads through dynconv_mmdet\'s safe '
    'reader, whatever TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD says. Use '
    'checkpoints whose origin you know; an official ODConv or '
    'KernelWarehouse release (ImageNet backbone or MMDetection 2.x '
    'detector) converts to a loadable checkpoint with the scripts of '
    'tools/model_converters/.')


def _read(local: str,
          map_location: MapLocation,
          origin: Optional[str] = None,
          temporary: bool = False) -> Dict[str, Any]:
    """:func:`safe_torch_load` of ``local``, its errors naming ``origin``.

    Args:
        local (str): The file read.
        map_location: As ``torch.load``'s.
        origin (str, optional): Where the file came from (a URL, a
            ``torchvision://`` name), told next to ``local``.
        temporary (bool): ``local`` is a temporary copy of ``origin``:
            errors name ``origin`` instead.
    """
    try:
        return safe_torch_load(local, map_location)
    except CheckpointError as err:
        message = str(err)
        if origin is not None:
            message = message.replace(
                local, origin if temporary else f'{local} ({origin})', 1)
        if message.startswith('refusing to load'):
            message += REFUSAL_HINT
        raise CheckpointError(message) from err


def _is_legacy_zip(path: str) -> bool:
    """A zip of one checkpoint file (the model zoo's format before torch
    1.6), not a checkpoint saved by ``torch.save`` (several members)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
    return len(members) == 1 and not members[0].is_dir()


def _extract_legacy_zip(path: str, directory: str) -> str:
    """Extract the one file of a legacy zip into ``directory``."""
    with zipfile.ZipFile(path) as archive:
        member = archive.infolist()[0]
        return archive.extract(member, directory)


def _download(url: str, model_dir: Optional[str], progress: bool) -> str:
    """The local copy of ``url`` in ``model_dir`` (default: torch's hub
    cache, ``<hub dir>/checkpoints``, where mmengine's ``load_url`` puts
    it), downloaded once."""
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(urlparse(url).path))
    if not osp.exists(cached):
        print_log(f'Downloading: "{url}" to {cached}', logger='current')
        torch.hub.download_url_to_file(url, cached, None, progress=progress)
    return cached


def _read_url(url: str,
              map_location: MapLocation,
              model_dir: Optional[str],
              progress: bool,
              name: Optional[str] = None) -> Dict[str, Any]:
    """Download (rank 0 first, like mmengine) and read safely."""
    rank, world_size = get_dist_info()
    cached = ''
    if rank == 0:
        cached = _download(url, model_dir, progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            cached = _download(url, model_dir, progress)
    origin = f'downloaded from {url}'
    if name is not None:
        origin = f'{name}, {origin}'
    if _is_legacy_zip(cached):
        local = _extract_legacy_zip(cached, osp.dirname(cached))
        return _read(local, map_location, origin)
    return _read(cached, map_location, origin)


def load_from_local(filename: str,
                    map_location: MapLocation = None) -> Dict[str, Any]:
    """A local file (scheme ``''``, every path no other scheme matches).

    Raises:
        FileNotFoundError: If the file does not exist (mmengine's message).
        CheckpointError: If safe loading refuses the file.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return _read(filename, map_location)


def load_from_http(filename: str,
                   map_location: MapLocation = None,
                   model_dir: Optional[str] = None,
                   progress: bool = os.isatty(0),
                   name: Optional[str] = None) -> Dict[str, Any]:
    """``http://`` and ``https://``: download into torch's hub cache (or
    ``model_dir``) unless already there, then read safely.

    In distributed runs rank 0 downloads first, as in mmengine. ``name``
    (e.g. ``'torchvision://resnet50'``) is told in errors with the URL.
    """
    return _read_url(filename, map_location, model_dir, progress, name)


def load_from_torchvision(filename: str,
                          map_location: MapLocation = None) -> Dict[str, Any]:
    """``torchvision://NAME`` (and the deprecated ``modelzoo://NAME``): the
    URL of mmengine's torchvision table (``resnet50``,
    ``resnet50.imagenet1k_v1``, ...), through :func:`load_from_http`."""
    model_urls = get_torchvision_models()
    if filename.startswith('modelzoo://'):
        print_log(
            'The URL scheme of "modelzoo://" is deprecated, please use '
            '"torchvision://" instead',
            logger='current',
            level=logging.WARNING)
        model_name = filename[len('modelzoo://'):]
    else:
        model_name = filename[len('torchvision://'):]
    return load_from_http(
        model_urls[model_name], map_location=map_location, name=filename)


def _openmmlab_name(filename: str) -> Tuple[str, str]:
    """``(prefix, model name)`` of an ``open-mmlab://`` / ``openmmlab://``
    name, deprecated names replaced as mmengine does."""
    prefix = 'open-mmlab://' if filename.startswith(
        'open-mmlab://') else 'openmmlab://'
    model_name = filename[len(prefix):]
    deprecated = get_deprecated_model_names()
    if model_name in deprecated:
        print_log(
            f'{prefix}{model_name} is deprecated in favor of '
            f'{prefix}{deprecated[model_name]}',
            logger='current',
            level=logging.WARNING)
        model_name = deprecated[model_name]
    return prefix, model_name


def load_from_openmmlab(filename: str,
                        map_location: MapLocation = None) -> Dict[str, Any]:
    """``open-mmlab://NAME`` / ``openmmlab://NAME``: mmengine's OpenMMLab
    table (with ``$MMENGINE_HOME/open_mmlab.json``); a URL goes through
    :func:`load_from_http`, a relative path is a file under
    ``$MMENGINE_HOME``, read safely.

    Raises:
        FileNotFoundError: If the local file does not exist.
        CheckpointError: If safe loading refuses the file.
    """
    _, model_name = _openmmlab_name(filename)
    model_url = get_external_models()[model_name]
    if model_url.startswith(('http://', 'https://')):
        return load_from_http(
            model_url, map_location=map_location, name=filename)
    local = osp.join(_get_mmengine_home(), model_url)
    if not osp.isfile(local):
        raise FileNotFoundError(f'{local} can not be found.')
    return _read(local, map_location, filename)


def load_from_mmcls(filename: str,
                    map_location: MapLocation = None) -> Dict[str, Any]:
    """``mmcls://NAME``: the URL of mmengine's mmcls table, through
    :func:`load_from_http`; returns ``{'state_dict': backbone weights}``
    (keys ``backbone.*`` with the prefix stripped), as mmengine does."""
    model_name = filename[len('mmcls://'):]
    checkpoint = load_from_http(
        get_mmcls_models()[model_name],
        map_location=map_location,
        name=filename)
    state_dict = checkpoint.get('state_dict', checkpoint)
    return dict(
        state_dict={
            key[len('backbone.'):]: value
            for key, value in state_dict.items() if key.startswith('backbone.')
        })


def load_from_pavi(filename: str,
                   map_location: MapLocation = None) -> Dict[str, Any]:
    """``pavi://PATH``: downloaded from pavi's model cloud into a temporary
    directory (every rank, as in mmengine), then read safely.

    Raises:
        ImportError: If ``pavi`` is not installed.
    """
    assert filename.startswith('pavi://'), \
        f'Expected filename startswith `pavi://`, but get {filename}'
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError(
            'Please install pavi to load checkpoint from modelcloud.')
    model = modelcloud.get(filename[len('pavi://'):])
    with tempfile.TemporaryDirectory() as tmp_dir:
        downloaded = osp.join(tmp_dir, model.name)
        model.download(downloaded)
        return _read(downloaded, map_location, filename, temporary=True)


def load_from_ceph(filename: str,
                   map_location: MapLocation = None,
                   backend: str = 'petrel') -> Dict[str, Any]:
    """``s3://`` and ``petrel://`` (optionally ``CLUSTER:s3://``): the
    bytes from mmengine's file backend (``petrel`` by default), written to
    a temporary file and read safely."""
    file_backend = get_file_backend(
        filename, backend_args={'backend': backend})
    content = file_backend.get(filename)
    with tempfile.TemporaryDirectory() as tmp_dir:
        local = osp.join(tmp_dir, osp.basename(filename) or 'checkpoint.pth')
        with open(local, 'wb') as f:
            f.write(content)
        return _read(local, map_location, filename, temporary=True)


#: mmengine's scheme prefixes (``CheckpointLoader._schemes`` keys, exactly
#: as mmengine 0.10 registers them) and our loader for each.
SAFE_SCHEMES: Dict[str, Callable[..., Dict[str, Any]]] = {
    '': load_from_local,
    'http://': load_from_http,
    'https://': load_from_http,
    'torchvision://': load_from_torchvision,
    'modelzoo://': load_from_torchvision,
    'open-mmlab://': load_from_openmmlab,
    'openmmlab://': load_from_openmmlab,
    'mmcls://': load_from_mmcls,
    'pavi://': load_from_pavi,
    r'(\S+\:)?s3://': load_from_ceph,
    r'(\S+\:)?petrel://': load_from_ceph,
}


def register_safe_schemes() -> None:
    """Register the loaders of :data:`SAFE_SCHEMES` in mmengine's
    ``CheckpointLoader``, replacing mmengine's (idempotent)."""
    for prefix, loader in SAFE_SCHEMES.items():
        CheckpointLoader.register_scheme(prefix, loader, force=True)


def foreign_schemes() -> Dict[str, Callable]:
    """The registered schemes whose loader is not one of ours."""
    ours = set(SAFE_SCHEMES.values())
    return {
        prefix: loader
        for prefix, loader in CheckpointLoader._schemes.items()
        if loader not in ours
    }
