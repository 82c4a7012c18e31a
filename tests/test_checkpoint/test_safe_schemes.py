"""Every scheme of mmengine's checkpoint loading reads through the safe
reader once ``dynconv_mmdet`` is imported, whatever the environment says.

Nothing is downloaded: ``torch.hub.download_url_to_file`` copies local
files for the URLs a test serves, torch's hub cache and ``$MMENGINE_HOME``
are temporary directories, and ``pavi`` and the ``petrel`` file backend
are stand-ins. The model-zoo names go through mmengine's own tables, so
the loaders' resolution is exercised.
"""
import json
import os
import os.path as osp
import pickle
import shutil
import sys
import types
import zipfile
from typing import Dict

import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.registry import DefaultScope
from mmengine.runner import checkpoint as mm_checkpoint
from mmengine.runner import load_checkpoint, save_checkpoint
from mmengine.runner.checkpoint import (CheckpointLoader, _load_checkpoint,
                                        _load_checkpoint_with_prefix,
                                        get_external_models, get_mmcls_models,
                                        get_torchvision_models)

import dynconv_mmdet
from dynconv_mmdet.checkpoint import CheckpointError
from dynconv_mmdet.checkpoint import schemes as safe_schemes
from dynconv_mmdet.testing.malicious import (UNSAFE_ENV,
                                             save_malicious_checkpoint)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(REPO, 'configs', 'toy',
                      'odconv_faster_rcnn_r50_fpn_toy.py')

#: every way to name a checkpoint, one per scheme (and the variants that
#: resolve differently: a deprecated open-mmlab name, a local open-mmlab
#: path, a cluster-prefixed s3 path)
SCHEMES = [
    'local', 'local-home', 'http', 'https', 'torchvision', 'modelzoo',
    'open-mmlab', 'openmmlab', 'open-mmlab-deprecated', 'open-mmlab-local',
    'mmcls', 'pavi', 's3', 'cluster-s3', 'petrel'
]


class _Served:
    """URLs, pavi models and s3 objects served from local files."""

    def __init__(self, tmp: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp
        self.urls: Dict[str, str] = {}
        self.downloads = []
        self.objects: Dict[str, str] = {}
        monkeypatch.setattr(torch.hub, 'download_url_to_file', self._fetch)
        monkeypatch.setattr(torch.hub, 'get_dir', lambda: osp.join(tmp, 'hub'))
        monkeypatch.setenv('MMENGINE_HOME', osp.join(tmp, 'mmengine_home'))
        monkeypatch.setenv('HOME', osp.join(tmp, 'home'))
        monkeypatch.setitem(sys.modules, 'pavi', self._pavi())
        monkeypatch.setattr(safe_schemes, 'get_file_backend', self._backend)

    def _fetch(self,
               url: str,
               dst: str,
               hash_prefix=None,
               progress: bool = True) -> None:
        self.downloads.append(url)
        shutil.copyfile(self.urls[url], dst)

    def _pavi(self) -> types.ModuleType:
        objects = self.objects

        class Model:

            def __init__(self, path: str) -> None:
                self.path = path
                self.name = osp.basename(path)

            def download(self, dst: str) -> None:
                shutil.copyfile(objects[f'pavi://{self.path}'], dst)

        pavi = types.ModuleType('pavi')
        pavi.modelcloud = types.SimpleNamespace(get=Model)
        return pavi

    def _backend(self, filename: str, backend_args: dict):
        assert backend_args == {'backend': 'petrel'}
        objects = self.objects

        class Backend:

            def get(self, name: str) -> bytes:
                with open(objects[name], 'rb') as f:
                    return f.read()

        return Backend()

    def place(self, scheme: str, src: str) -> str:
        """Make ``src`` reachable through ``scheme``; the name to load."""
        base = osp.basename(src)
        if scheme == 'local':
            return src
        if scheme == 'local-home':
            os.makedirs(osp.join(self.tmp, 'home'), exist_ok=True)
            shutil.copyfile(src, osp.join(self.tmp, 'home', base))
            return f'~/{base}'
        if scheme in ('http', 'https'):
            name = f'{scheme}://example.com/weights/{base}'
            self.urls[name] = src
            return name
        if scheme in ('torchvision', 'modelzoo'):
            self.urls[get_torchvision_models()['resnet18']] = src
            return f'{scheme}://resnet18'
        if scheme in ('open-mmlab', 'openmmlab', 'open-mmlab-deprecated'):
            self.urls[get_external_models()['detectron/resnet50_caffe']] = src
            if scheme == 'open-mmlab-deprecated':
                return 'open-mmlab://resnet50_caffe'
            return f'{scheme}://detectron/resnet50_caffe'
        if scheme == 'open-mmlab-local':
            home = osp.join(self.tmp, 'mmengine_home')
            os.makedirs(osp.join(home, 'mine'), exist_ok=True)
            shutil.copyfile(src, osp.join(home, 'mine', base))
            with open(osp.join(home, 'open_mmlab.json'), 'w') as f:
                json.dump({'dynconv/local': f'mine/{base}'}, f)
            return 'open-mmlab://dynconv/local'
        if scheme == 'mmcls':
            self.urls[get_mmcls_models()['resnet18']] = src
            return 'mmcls://resnet18'
        name = {
            'pavi': 'pavi://project/',
            's3': 's3://bucket/',
            'cluster-s3': 'cluster1:s3://bucket/',
            'petrel': 'petrel://bucket/'
        }[scheme] + base
        self.objects[name] = src
        return name


@pytest.fixture
def served(tmp_path, monkeypatch) -> _Served:
    return _Served(str(tmp_path), monkeypatch)


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """A payload checkpoint, in the unsafe environment."""
    marker = str(tmp_path / 'pwned')
    path = save_malicious_checkpoint(str(tmp_path / 'evil.pth'), marker)
    monkeypatch.setenv(UNSAFE_ENV, '1')
    yield path
    assert not osp.exists(marker), 'the payload ran'


@pytest.fixture
def benign(tmp_path) -> str:
    """A checkpoint as mmengine's runner saves it: tensors, meta, message
    hub with history buffers (numpy arrays)."""
    hub = MessageHub.get_instance('test_safe_schemes')
    for i in range(3):
        hub.update_scalar('train/loss', 1.0 / (i + 1))
    hub.update_info('iter', 3)
    path = str(tmp_path / 'benign.pth')
    save_checkpoint(
        dict(
            state_dict={
                'backbone.conv.weight': torch.arange(4.),
                'head.fc.bias': torch.ones(2)
            },
            meta=dict(iter=3, epoch=1, seed=0),
            message_hub=hub.state_dict()), path)
    return path


def test_every_registered_loader_is_ours():
    ours = set(safe_schemes.SAFE_SCHEMES.values())
    for prefix, loader in CheckpointLoader._schemes.items():
        assert loader in ours, (
            f'mmengine scheme {prefix!r} reads with {loader.__module__}.'
            f'{loader.__name__}, not through the safe reader; add a loader '
            'for it to dynconv_mmdet/checkpoint/schemes.py')
    assert safe_schemes.foreign_schemes() == {}
    assert set(CheckpointLoader._schemes) == set(safe_schemes.SAFE_SCHEMES)
    # idempotent: importing again changes nothing
    safe_schemes.register_safe_schemes()
    assert safe_schemes.foreign_schemes() == {}
    assert dynconv_mmdet.__version__


def test_mmengine_own_loaders_would_run_the_payload(tmp_path, served,
                                                    monkeypatch):
    """The premise: mmengine's loaders, no longer registered, run it."""
    monkeypatch.delenv(UNSAFE_ENV, raising=False)
    marker = str(tmp_path / 'pwned')
    path = save_malicious_checkpoint(str(tmp_path / 'evil.pth'), marker)
    # URLs: torch.hub.load_state_dict_from_url passes weights_only=False,
    # even without the variable
    mm_checkpoint.load_from_http(served.place('https', path), 'cpu')
    assert osp.isfile(marker)
    os.remove(marker)
    with pytest.raises(pickle.UnpicklingError, match='weights_only'):
        mm_checkpoint.load_from_local(path, 'cpu')
    monkeypatch.setenv(UNSAFE_ENV, '1')
    mm_checkpoint.load_from_local(path, 'cpu')
    assert osp.isfile(marker)


@pytest.mark.parametrize('scheme', SCHEMES)
def test_payload_is_refused_through_every_scheme(scheme, evil, served):
    name = served.place(scheme, evil)
    with pytest.raises(CheckpointError) as err:
        CheckpointLoader.load_checkpoint(name, map_location='cpu')
    message = str(err.value)
    assert message.startswith('refusing to load '), message
    assert 'exec' in message and 'tools/model_converters' in message
    if scheme in ('pavi', 's3', 'cluster-s3', 'petrel'):
        # the temporary copy is not named, the object is
        assert message.startswith(f'refusing to load {name}:')
    elif scheme not in ('local', 'local-home'):
        assert f'({name}' in message or f'downloaded from {name}' in message
    assert len(served.downloads) <= 1


@pytest.mark.parametrize('scheme', SCHEMES)
def test_benign_checkpoint_loads_through_every_scheme(scheme, benign, served):
    name = served.place(scheme, benign)
    ckpt = CheckpointLoader.load_checkpoint(name, map_location='cpu')
    if scheme == 'mmcls':  # mmengine keeps the backbone, unprefixed
        assert set(ckpt) == {'state_dict'}
        assert list(ckpt['state_dict']) == ['conv.weight']
        assert torch.equal(ckpt['state_dict']['conv.weight'], torch.arange(4.))
        return
    assert torch.equal(ckpt['state_dict']['head.fc.bias'], torch.ones(2))
    assert ckpt['meta']['iter'] == 3
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.current() == pytest.approx(1 / 3)
    if served.downloads:  # a second load reads the cached download
        CheckpointLoader.load_checkpoint(name, map_location='cpu')
        assert len(served.downloads) == 1


def test_legacy_zip_download_is_read_safely(tmp_path, benign, evil, served):
    for src in (benign, evil):
        archive = str(tmp_path / (osp.basename(src) + '.zip'))
        with zipfile.ZipFile(archive, 'w') as f:
            f.write(src, osp.basename(src))
        served.urls[f'https://example.com/{osp.basename(archive)}'] = archive
    ckpt = _load_checkpoint('https://example.com/benign.pth.zip', 'cpu')
    assert ckpt['meta']['iter'] == 3
    with pytest.raises(CheckpointError, match='^refusing to load'):
        _load_checkpoint('https://example.com/evil.pth.zip', 'cpu')


def test_mmengine_entry_points_refuse(evil):
    net = nn.Linear(1, 1)
    with pytest.raises(CheckpointError, match='^refusing to load'):
        load_checkpoint(net, evil, map_location='cpu')
    with pytest.raises(CheckpointError, match='^refusing to load'):
        _load_checkpoint(evil, map_location='cpu')
    with pytest.raises(CheckpointError, match='^refusing to load'):
        _load_checkpoint_with_prefix('backbone.', evil)


def test_missing_local_file_keeps_mmengine_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='can not be found'):
        _load_checkpoint(str(tmp_path / 'nothing.pth'))


def test_refusal_says_what_to_do_without_the_variable(tmp_path, served,
                                                      monkeypatch):
    monkeypatch.delenv(UNSAFE_ENV, raising=False)
    marker = str(tmp_path / 'pwned')
    path = save_malicious_checkpoint(str(tmp_path / 'evil.pth'), marker)
    for name in (path, served.place('torchvision', path)):
        with pytest.raises(CheckpointError) as err:
            _load_checkpoint(name, map_location='cpu')
        message = str(err.value)
        assert message.startswith('refusing to load ')
        assert 'may be malicious' in message or 'arbitrary' in message
        assert 're-save only its tensors' in message  # what to do
        assert 'origin you know' in message  # where it came from
        assert 'tools/model_converters/' in message  # our converters
        # not torch's advice to switch safe loading off
        assert 'Re-running' not in message
        assert 'weights_only' not in message.replace('weights_only=True', '')
    assert 'torchvision://resnet18, downloaded from https://' in message
    assert not osp.exists(marker)


def _tiny_detector(**init_cfgs) -> nn.Module:
    """A RetinaNet of a few thousand weights (mmdet's modules only)."""
    cfg = dict(
        type='RetinaNet',
        data_preprocessor=dict(type='DetDataPreprocessor'),
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=8,
            out_indices=(1, 2, 3),
            init_cfg=None),
        neck=dict(
            type='FPN', in_channels=[16, 32, 64], out_channels=8, num_outs=3),
        bbox_head=dict(
            type='RetinaHead',
            num_classes=2,
            in_channels=8,
            stacked_convs=1,
            feat_channels=8,
            anchor_generator=dict(
                type='AnchorGenerator',
                octave_base_scale=4,
                scales_per_octave=1,
                ratios=[1.0],
                strides=[8, 16, 32]),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0.0] * 4,
                target_stds=[1.0] * 4),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True),
            loss_bbox=dict(type='L1Loss')))
    for part, init_cfg in init_cfgs.items():
        if part == 'detector':
            cfg['init_cfg'] = init_cfg
        else:
            cfg[part]['init_cfg'] = init_cfg
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg)


@pytest.mark.parametrize('part, prefix', [('neck', None),
                                          ('bbox_head', 'bbox_head.'),
                                          ('detector', None)])
def test_pretrained_init_refuses(evil, part, prefix):
    init_cfg = dict(type='Pretrained', checkpoint=evil)
    if prefix:
        init_cfg['prefix'] = prefix
    model = _tiny_detector(**{part: init_cfg})
    with pytest.raises(CheckpointError, match='^refusing to load'):
        model.init_weights()


def test_pretrained_init_still_loads(tmp_path):
    source = _tiny_detector()
    for p in source.parameters():
        nn.init.normal_(p)
    path = str(tmp_path / 'detector.pth')
    torch.save({'state_dict': source.state_dict(), 'meta': {}}, path)
    model = _tiny_detector(
        neck=dict(type='Pretrained', checkpoint=path, prefix='neck.'),
        bbox_head=dict(
            type='Pretrained', checkpoint=path, prefix='bbox_head.'))
    model.init_weights()
    expected = source.state_dict()
    for key, value in model.state_dict().items():
        if key.startswith(('neck.', 'bbox_head.')):
            assert torch.equal(value, expected[key]), key


def test_det_inferencer_refuses(evil):
    from mmdet.apis import DetInferencer
    with pytest.raises(CheckpointError, match=f'^refusing to load {evil}'):
        DetInferencer(model=TOY_CONFIG, weights=evil, device='cpu')
