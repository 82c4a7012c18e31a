import os.path as osp

import pytest
import torch

import dynconv_mmdet  # noqa: F401  (registers the layers and backbones)

DATA_DIR = osp.join(osp.dirname(__file__), 'data')


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
