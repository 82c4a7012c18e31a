# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Checkpoints that run code when unpickled, to test safe loading.

The payload only writes a marker file, so a test can tell whether any code
ran: ``exec`` is a builtin, found by every unpickler that does not refuse
it, in any process.
"""
import os.path as osp
from typing import Dict, Optional

import torch
from torch import Tensor

#: Environment variable that makes ``torch.load`` without an explicit
#: ``weights_only`` unpickle arbitrary objects (torch >= 2.6).
UNSAFE_ENV = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'


class WritesFile:
    """Unpickling this runs ``exec``, which writes ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        code = f'open({self.path!r}, "w").write("payload ran")'
        return exec, (code, )


def save_malicious_checkpoint(path: str,
                              marker: str,
                              state_dict: Optional[Dict[str, Tensor]] = None,
                              **entries) -> str:
    """Save ``{'state_dict', 'meta'}`` with a payload in ``meta``.

    Args:
        path (str): Where to save.
        marker (str): The file the payload writes; must not exist.
        state_dict (dict, optional): Real weights (e.g. a model's), so that
            an unsafe load would otherwise succeed. Default: one tensor.
        **entries: More top-level entries.

    Returns:
        str: ``path``.
    """
    assert not osp.exists(marker), marker
    torch.save(
        dict(
            state_dict=state_dict or {'w': torch.zeros(1)},
            meta=dict(iter=1, epoch=0, payload=WritesFile(marker)),
            **entries), path)
    return path
