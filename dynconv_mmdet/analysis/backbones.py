"""The named backbones of the analysis tools.

One table, :data:`BACKBONES` (row name -> mmdet config without ``preset``),
shared by the complexity tool (:mod:`dynconv_mmdet.analysis.complexity`,
``tools/analysis_tools/backbone_complexity.py``) and the benchmark
(:mod:`dynconv_mmdet.analysis.benchmark`): each tool names the rows it
counts or times, and a row means the same network in both.
"""
from typing import Dict

#: Row name -> backbone config (no ``preset``: the tools add each preset of
#: the backbone's own table). RTMDet-tiny's and YOLOX-S's backbones as
#: configs/rtmdet_tiny_* and configs/yolox_s_* build them; ``ResNet-18
#: w16`` is the tiny ResNet of the benchmark's ``--quick`` rows.
BACKBONES: Dict[str, dict] = {
    'ResNet-50':
    dict(type='DynamicResNet', depth=50),
    'MobileNetV2 1.0':
    dict(type='DynamicMobileNetV2', widen_factor=1.0),
    'MobileNetV2 0.5':
    dict(type='DynamicMobileNetV2', widen_factor=0.5),
    'CSPNeXt-tiny':
    dict(type='DynamicCSPNeXt', deepen_factor=0.167, widen_factor=0.375),
    'CSPDarknet-S':
    dict(type='DynamicCSPDarknet', deepen_factor=0.33, widen_factor=0.5),
    'ResNet-18 w16':
    dict(type='DynamicResNet', depth=18, base_channels=16),
}


def backbone_cfg(name: str) -> dict:
    """The config of a named backbone (a copy).

    Raises:
        KeyError: Not a row of :data:`BACKBONES`; says which are.
    """
    if name not in BACKBONES:
        raise KeyError(f'unknown backbone {name!r}; the named backbones are '
                       f'{list(BACKBONES)}')
    return dict(BACKBONES[name])
