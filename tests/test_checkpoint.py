"""mmengine checkpoints load under weights_only=True, nothing more does."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from dynconv_mmdet.utils import CheckpointError, safe_torch_load


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
