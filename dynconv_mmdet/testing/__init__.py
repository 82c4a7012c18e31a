"""Helpers shared by the tests of this package and of plugins built on it
(as ``mmdet.testing`` does for mmdet)."""
from ._utils import isolated_default_scope, naive_dynamic_conv, rel_err
from .families import build_example, family_examples, registered_families
from .toy_runner import SequenceMetric, ToyModel, toy_dataset, toy_runner

__all__ = [
    'isolated_default_scope', 'naive_dynamic_conv', 'rel_err', 'build_example',
    'family_examples', 'registered_families', 'SequenceMetric', 'ToyModel',
    'toy_dataset', 'toy_runner'
]
