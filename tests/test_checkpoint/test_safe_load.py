"""mmengine checkpoints load under weights_only=True, nothing more does,
whatever the environment says."""
import argparse
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from dynconv_mmdet.checkpoint import (CheckpointError, NonTensorEntry,
                                      safe_torch_load)
from dynconv_mmdet.testing.malicious import (UNSAFE_ENV, WritesFile,
                                             save_malicious_checkpoint)

ARGS = NonTensorEntry('args', ('argparse.Namespace', ))


def test_message_hub_round_trips_safely(tmp_path):
    hub = MessageHub.get_instance('test_checkpoint_hub')
    for i in range(5):
        hub.update_scalar('train/loss', 1.0 / (i + 1))
    hub.update_info('iter', 5)
    path = str(tmp_path / 'ckpt.pth')
    torch.save(
        dict(
            message_hub=hub.state_dict(),
            meta=dict(iter=5, seed=np.int64(3)),
            state_dict={'w': torch.ones(2)}), path)
    loaded = torch.load(path, weights_only=True)
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    np.testing.assert_allclose(buffer.data[0], [1.0, 0.5, 1 / 3, 0.25, 0.2])
    assert buffer.mean(2) == pytest.approx((0.25 + 0.2) / 2)
    assert buffer.max_length == 1000000
    assert loaded['meta']['seed'] == 3
    assert safe_torch_load(path)['meta']['iter'] == 5


def test_getattr_is_not_allow_listed(tmp_path):
    assert getattr not in torch.serialization.get_safe_globals()

    class Sneaky:

        def __reduce__(self):
            return getattr, (HistoryBuffer, 'min')

    path = str(tmp_path / 'sneaky.pth')
    with open(path, 'wb') as f:
        pickle.dump({'x': Sneaky()}, f, protocol=2)
    with pytest.raises(CheckpointError, match='refusing'):
        safe_torch_load(path)


def test_environment_cannot_switch_safe_loading_off(tmp_path, monkeypatch):
    marker = str(tmp_path / 'pwned')
    path = save_malicious_checkpoint(str(tmp_path / 'evil.pth'), marker)
    monkeypatch.setenv(UNSAFE_ENV, '1')
    with pytest.raises(CheckpointError) as err:
        safe_torch_load(path)
    assert not osp.exists(marker)
    message = str(err.value)
    assert message.startswith(f'refusing to load {path}')
    assert 'exec' in message and 'not a PyTorch checkpoint' not in message
    # what the variable does to a load that leaves weights_only unset: the
    # premise of this test
    torch.load(path, map_location='cpu')
    assert osp.isfile(marker)


class _Shell:
    """The classic payload: a shell command through ``os.system``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def test_blocked_module_is_named_as_a_refusal(tmp_path, monkeypatch):
    marker = str(tmp_path / 'pwned')
    path = str(tmp_path / 'shell.pth')
    torch.save({'state_dict': {}, 'x': _Shell(marker)}, path)
    monkeypatch.setenv(UNSAFE_ENV, '1')
    with pytest.raises(CheckpointError) as err:
        safe_torch_load(path)
    message = str(err.value)
    assert message.startswith(f'refusing to load {path}')
    assert 'system' in message and 'may be malicious' in message
    assert 'not a PyTorch checkpoint' not in message
    assert not osp.exists(marker)


def _release(path: str, args, where: str = 'args') -> dict:
    """A KernelWarehouse-style release: ``{'model': ..., 'args': ...}``."""
    state = {'warehouse_manager.weights.0': torch.arange(6.).view(2, 3)}
    torch.save({'model': state, where: args}, path)
    return state


def test_named_entry_is_dropped_or_kept_as_data(tmp_path):
    path = str(tmp_path / 'release.pth')
    state = _release(path, argparse.Namespace(lr=4e-3, model='kw1x_r18'))
    with pytest.raises(CheckpointError, match='refusing.*argparse.Namespace'):
        safe_torch_load(path)
    before = set(map(str, torch.serialization.get_safe_globals()))

    dropped = safe_torch_load(path, entries=[ARGS])
    assert set(dropped) == {'model'}
    assert torch.equal(dropped['model']['warehouse_manager.weights.0'],
                       state['warehouse_manager.weights.0'])

    kept = safe_torch_load(path, entries=[ARGS._replace(keep=True)])
    assert kept['args'] == {'lr': 4e-3, 'model': 'kw1x_r18'}
    # nothing stays allow-listed after the call
    assert set(map(str, torch.serialization.get_safe_globals())) == before


def test_named_entry_elsewhere_or_with_a_payload_is_refused(tmp_path):
    path = str(tmp_path / 'moved.pth')
    _release(path, argparse.Namespace(lr=0.1), where='meta')
    with pytest.raises(CheckpointError, match=r"refusing.*\['meta'\].*'args'"):
        safe_torch_load(path, entries=[ARGS])

    marker = str(tmp_path / 'pwned')
    path = str(tmp_path / 'evil_args.pth')
    _release(path, argparse.Namespace(lr=0.1, hook=WritesFile(marker)))
    with pytest.raises(CheckpointError, match='refusing to load.*exec'):
        safe_torch_load(path, entries=[ARGS._replace(keep=True)])
    assert not osp.exists(marker)


def test_broken_files_are_not_checkpoints(tmp_path):
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint at all')
    with pytest.raises(CheckpointError, match='is not a PyTorch checkpoint'):
        safe_torch_load(str(junk))
    whole = tmp_path / 'whole.pth'
    torch.save({'w': torch.zeros(1000)}, str(whole))
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(whole.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match='is not a PyTorch checkpoint'):
        safe_torch_load(str(truncated))
