"""CSPNeXt (the RTMDet backbone) whose convolutions can be dynamic.

RTMDet: Lyu et al., "RTMDet: An Empirical Study of Designing Real-Time
Object Detectors", arXiv 2212.07784. Placement of the dynamic convs: the
ODConv paper's MobileNetV2 rule (Li, Zhou, Yao, ICLR 2022): every conv but
the stem.
"""
from typing import Optional

from mmdet.models.backbones import CSPNeXt
from mmdet.registry import MODELS

from .csp_base import CSPBackboneMixin, InitCfg, mmdet_default
from .layout import CSPNEXT_PRESETS


@MODELS.register_module()
class DynamicCSPNeXt(CSPBackboneMixin, CSPNeXt):
    """mmdet's CSPNeXt with dynamic convolutions placed by config.

    Keys, ``out_indices`` (0: stem, 1-4: ``stage1``-``stage4``),
    ``frozen_stages`` (frozen stages freeze their attentions too),
    ``norm_eval`` (attention norms too), ``norm_cfg`` (a batch norm, e.g.
    RTMDet's SyncBN, reaches the attention of families that take it) and
    every other argument behave as in mmdet's
    :class:`~mmdet.models.backbones.CSPNeXt`.

    The presets (:data:`~.layout.CSPNEXT_PRESETS`) make every conv but the
    stem dynamic: in each stage the stride-2 3x3 conv, the SPP bottleneck's
    1x1 convs (last stage), the CSP layer's three 1x1 convs and, in every
    CSPNeXt block, the 3x3 conv and both convs of the 5x5
    depthwise-separable conv (a depthwise ODConv has no filter attention).

    Args:
        arch (str): ``'P5'`` or ``'P6'`` (the presets cover every stage of
            either).
        *args: mmdet CSPNeXt's other positional arguments
            (``deepen_factor``, ``widen_factor``, ...).
        preset (str): A key of :attr:`presets`.
        dynamic (dict, optional): Overrides of the preset's layout:
            ``conv_cfg``, ``stages`` (one bool per stage), ``stem`` and
            ``parts`` (which parts of a dynamic stage: ``'downsample'``,
            ``'spp'``, ``'csp'``, ``'blocks'``; see
            :class:`~.csp_base.CSPBackboneMixin`).
        temperature (float, optional): Temperature of the layers that have
            one; ``None``: each family's default.
        strict_pretrained (bool): Raise on any checkpoint mismatch.
        freeze_shared_state (bool): ``frozen_stages`` also freezes the state
            frozen dynamic convs share with others. Default: True.
        init_cfg: mmdet's default (Kaiming-uniform convs); a ``Pretrained``
            entry (RTMDet's ImageNet ``cspnext-*`` checkpoints, with
            ``prefix='backbone.'``) is loaded by the backbone itself, strictly,
            dense kernels expanded into dynamic ones.
        **kwargs: Other mmdet CSPNeXt arguments.

    Our own arguments are keyword-only. Input ``[B, 3, H, W]``; outputs one
    ``[B, C_i, H / s_i, W / s_i]`` per ``out_indices`` entry (``s_i`` = 2,
    4, 8, 16, 32 for indices 0-4).
    """

    pretrained_arch = 'cspnext'
    presets = CSPNEXT_PRESETS

    def __init__(self,
                 arch: str = 'P5',
                 *args,
                 preset: str = 'static',
                 dynamic: Optional[dict] = None,
                 temperature: Optional[float] = None,
                 strict_pretrained: bool = True,
                 freeze_shared_state: bool = True,
                 init_cfg: InitCfg = mmdet_default(CSPNeXt, 'init_cfg'),
                 pretrained: Optional[str] = None,
                 **kwargs) -> None:
        self._init_csp(CSPNeXt, arch, args, kwargs, preset, dynamic,
                       temperature, strict_pretrained, freeze_shared_state,
                       init_cfg, pretrained)
