"""dynconv_mmdet.analysis.backbones: one table of named backbones for the
complexity tool and the benchmark."""
import importlib

import pytest

from dynconv_mmdet.analysis import backbones, complexity
from dynconv_mmdet.analysis.benchmark import BACKBONES, QUICK_BACKBONES


def test_one_table_for_both_tools():
    # every row either tool counts or times is a row of the shared table,
    # with the same config
    for spec in BACKBONES + QUICK_BACKBONES:
        assert spec.cfg == backbones.BACKBONES[spec.name]
    for name, cfg in complexity.BACKBONE_CFGS.items():
        assert cfg is backbones.BACKBONES[name]
    shared = {s.name for s in BACKBONES} & set(complexity.BACKBONE_CFGS)
    assert shared == {'ResNet-50', 'MobileNetV2 1.0'}
    tool = importlib.import_module('tools.analysis_tools.backbone_complexity')
    assert tool.parse_args([]).backbones == list(complexity.COUNTED_BACKBONES)
    # a copy: a tool cannot change the table
    cfg = backbones.backbone_cfg('ResNet-50')
    cfg['depth'] = 101
    assert backbones.BACKBONES['ResNet-50']['depth'] == 50
    with pytest.raises(KeyError, match='ResNet-50'):
        backbones.backbone_cfg('ResNet-51')
