"""Shared by the tests of the package (tests/) and of the classification
project (projects/classification/tests/)."""
import os

import pytest
import torch

import dynconv_mmdet  # noqa: F401  (registers the layers and backbones)
from dynconv_mmdet.testing import isolated_default_scope


def pytest_configure(config):
    """Under pytest-xdist (``tools/run_tests.sh`` runs one worker per core)
    every worker computes on one thread, and so do the tools its tests
    start: as many threads as cores, none waiting for another."""
    if os.environ.get('PYTEST_XDIST_WORKER'):
        os.environ['OMP_NUM_THREADS'] = '1'
        torch.set_num_threads(1)


@pytest.fixture(scope='module', autouse=True)
def _module_isolated():
    """Every test module starts from the default scope the session had
    (a module fixture that builds a Runner or calls mmdet's
    ``register_all_modules`` would otherwise set it for whichever modules
    run next in that process, which differ between runs under xdist)."""
    with isolated_default_scope():
        yield


@pytest.fixture(autouse=True)
def _isolated():
    """Every test starts from the same seed and the same default scope."""
    torch.manual_seed(0)
    with isolated_default_scope():
        yield
