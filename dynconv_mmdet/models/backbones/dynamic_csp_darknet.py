"""CSPDarknet (the YOLOX backbone) whose convolutions can be dynamic.

YOLOX: Ge et al., "YOLOX: Exceeding YOLO Series in 2021", arXiv 2107.08430.
Placement of the dynamic convs: the ODConv paper's MobileNetV2 rule (Li,
Zhou, Yao, ICLR 2022): every conv but the stem.
"""
from typing import Optional

from mmdet.models.backbones import CSPDarknet
from mmdet.registry import MODELS

from .csp_base import CSPBackboneMixin, InitCfg, mmdet_default
from .layout import CSP_DARKNET_PRESETS


@MODELS.register_module()
class DynamicCSPDarknet(CSPBackboneMixin, CSPDarknet):
    """mmdet's CSPDarknet with dynamic convolutions placed by config.

    Keys, ``out_indices`` (0: the ``Focus`` stem, 1-4:
    ``stage1``-``stage4``), ``frozen_stages`` (frozen stages freeze their
    attentions too), ``norm_eval`` (attention norms too), ``norm_cfg`` (a
    batch norm reaches the attention of families that take it) and every
    other argument behave as in mmdet's
    :class:`~mmdet.models.backbones.CSPDarknet`.

    The presets (:data:`~.layout.CSP_DARKNET_PRESETS`) make every conv but
    the ``Focus`` stem's dynamic: in each stage the stride-2 3x3 conv, the
    SPP bottleneck's 1x1 convs (last stage), the CSP layer's three 1x1 convs
    and both convs of every Darknet bottleneck (1x1 and 3x3; with
    ``use_depthwise``, both convs of its depthwise-separable 3x3).

    Args:
        arch (str): ``'P5'`` or ``'P6'`` (the presets cover every stage of
            either).
        *args: mmdet CSPDarknet's other positional arguments
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
        init_cfg: mmdet's default (Kaiming-uniform convs; YOLOX trains from
            scratch); a ``Pretrained`` entry is loaded by the backbone
            itself, strictly.
        **kwargs: Other mmdet CSPDarknet arguments.

    Our own arguments are keyword-only. Input ``[B, 3, H, W]`` (``H``, ``W``
    even); outputs one ``[B, C_i, H / s_i, W / s_i]`` per ``out_indices``
    entry (``s_i`` = 2, 4, 8, 16, 32 for indices 0-4).
    """

    pretrained_arch = 'csp_darknet'
    presets = CSP_DARKNET_PRESETS

    def __init__(self,
                 arch: str = 'P5',
                 *args,
                 preset: str = 'static',
                 dynamic: Optional[dict] = None,
                 temperature: Optional[float] = None,
                 strict_pretrained: bool = True,
                 freeze_shared_state: bool = True,
                 init_cfg: InitCfg = mmdet_default(CSPDarknet, 'init_cfg'),
                 pretrained: Optional[str] = None,
                 **kwargs) -> None:
        self._init_csp(CSPDarknet, arch, args, kwargs, preset, dynamic,
                       temperature, strict_pretrained, freeze_shared_state,
                       init_cfg, pretrained)
