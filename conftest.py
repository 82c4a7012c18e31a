"""Shared by the tests of the package (tests/) and of the classification
project (projects/classification/tests/)."""
import pytest
import torch

import dynconv_mmdet  # noqa: F401  (registers the layers and backbones)
from dynconv_mmdet.testing import isolated_default_scope


@pytest.fixture(autouse=True)
def _isolated():
    """Every test starts from the same seed and the same default scope."""
    torch.manual_seed(0)
    with isolated_default_scope():
        yield
