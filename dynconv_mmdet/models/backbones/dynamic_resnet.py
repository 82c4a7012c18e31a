"""ResNet whose convolutions can be dynamic (CondConv / DyConv / ODConv)."""
from typing import Optional, Union

import torch.nn as nn
from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS

from ..layers import set_temperature
from .layout import RESNET_PRESETS, make_dynamic, resolve_layout
from .pretrained_mixin import PretrainedLoaderMixin

_RESNET_DEFAULTS = dict(
    conv_cfg=None,
    stages=(False, False, False, False),
    block_convs=None,
    downsample=False,
    stem=False)


@MODELS.register_module()
class DynamicResNet(PretrainedLoaderMixin, ResNet):
    """mmdet's ResNet with dynamic convolutions placed by config.

    Keys, ``out_indices``, ``frozen_stages`` (frozen stages freeze their
    attention too), ``norm_eval`` (every BatchNorm, attention norms included),
    ``norm_cfg``, ``with_cp``, ``dcn`` and ``stage_with_dcn`` behave as in
    mmdet's :class:`~mmdet.models.backbones.ResNet`.

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        preset (str): ``'static'``, ``'condconv8x'``, ``'dyconv4x'``,
            ``'odconv1x'`` or ``'odconv4x'`` (see :mod:`.layout`).
        dynamic (dict, optional): Overrides of the preset's layout:
            ``conv_cfg`` (the dynamic conv, e.g. ``dict(type='ODConv2d',
            kernel_num=4)``), ``stages`` (one bool per stage),
            ``block_convs`` (names inside a block, default all: ``conv1``,
            ``conv2`` and, for Bottleneck, ``conv3``), ``downsample`` and
            ``stem`` (bools).
        temperature (float): Initial temperature of DyConv/ODConv layers.
        strict_pretrained (bool): Raise on any checkpoint mismatch.
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` is loaded by
            the backbone itself (see :func:`.pretrained.load_pretrained`).
        **kwargs: Other mmdet ResNet arguments.

    Input ``[B, 3, H, W]``; outputs one ``[B, C_i, H / s_i, W / s_i]`` per
    ``out_indices`` entry (``s_i`` = 4, 8, 16, 32).
    """

    pretrained_arch = 'resnet'

    def __init__(self,
                 depth: int,
                 preset: str = 'static',
                 dynamic: Optional[dict] = None,
                 temperature: float = 1.0,
                 strict_pretrained: bool = True,
                 init_cfg: Optional[Union[dict, list]] = None,
                 **kwargs) -> None:
        init_cfg = self._split_init_cfg(init_cfg, strict_pretrained)
        super().__init__(depth=depth, init_cfg=init_cfg, **kwargs)
        self.preset = preset
        self.layout = resolve_layout(RESNET_PRESETS, preset, dynamic,
                                     _RESNET_DEFAULTS,
                                     type(self).__name__)
        self._make_dynamic_convs()
        set_temperature(self, temperature)
        self._freeze_stages()

    def _swap(self, parent: nn.Module, name: str) -> None:
        setattr(
            parent, name,
            make_dynamic(
                getattr(parent, name), self.layout['conv_cfg'], self.norm_cfg))

    def _make_dynamic_convs(self) -> None:
        layout = self.layout
        if layout['stem']:
            if self.deep_stem:
                for i, m in enumerate(self.stem):
                    if isinstance(m, nn.Conv2d):
                        self._swap(self.stem, str(i))
            else:
                self._swap(self, 'conv1')
        for stage, name in enumerate(self.res_layers):
            if not layout['stages'][stage]:
                continue
            for block in getattr(self, name):
                convs = layout['block_convs'] or [
                    n
                    for n in ('conv1', 'conv2', 'conv3') if hasattr(block, n)
                ]
                for conv in convs:
                    if not hasattr(block, conv):
                        raise ValueError(
                            f'{type(self).__name__}: a {type(block).__name__}'
                            f' has no {conv!r}; block_convs must name its '
                            'convs')
                    if conv == 'conv2' and getattr(block, 'with_dcn', False):
                        raise ValueError(
                            f'{type(self).__name__}: conv2 of stage '
                            f'{stage + 1} is a DCN; exclude it from '
                            'block_convs or from stage_with_dcn')
                    self._swap(block, conv)
                if layout['downsample'] and block.downsample is not None:
                    for i, m in enumerate(block.downsample):
                        if isinstance(m, nn.Conv2d):
                            self._swap(block.downsample, str(i))
