"""MobileNetV2 whose convolutions can be dynamic."""
from typing import Optional, Union

from mmcv.cnn import ConvModule
from mmdet.models.backbones import MobileNetV2
from mmdet.registry import MODELS

from ..layers import set_temperature
from .layout import MOBILENET_V2_PRESETS, make_dynamic, resolve_layout
from .pretrained_mixin import PretrainedLoaderMixin

_MBV2_DEFAULTS = dict(
    conv_cfg=None, stages=(False, ) * 7, last_conv=False, stem=False)


@MODELS.register_module()
class DynamicMobileNetV2(PretrainedLoaderMixin, MobileNetV2):
    """mmdet's MobileNetV2 with dynamic convolutions placed by config.

    Keys, ``out_indices`` (0-6: ``layer1``-``layer7``, 7: the final 1x1 conv
    ``conv2``), ``frozen_stages``, ``norm_eval``, ``norm_cfg`` and ``with_cp``
    behave as in mmdet's :class:`~mmdet.models.backbones.MobileNetV2`. The
    default ``out_indices=(1, 2, 4, 7)`` feeds FPN with 24/32/96/1280 channels
    (widen factor 1.0), as the released ODConv detectors do.

    Args:
        widen_factor (float): 0.5, 0.75, 1.0, ...
        preset (str): ``'static'``, ``'condconv8x'``, ``'dyconv4x'``,
            ``'odconv1x'`` or ``'odconv4x'`` (see :mod:`.layout`).
        dynamic (dict, optional): Overrides: ``conv_cfg``, ``stages`` (7
            bools), ``last_conv`` and ``stem`` (bools).
        temperature (float): Initial temperature of DyConv/ODConv layers.
        strict_pretrained (bool): Raise on any checkpoint mismatch.
        **kwargs: Other mmdet MobileNetV2 arguments.
    """

    pretrained_arch = 'mobilenet_v2'

    def __init__(self,
                 widen_factor: float = 1.0,
                 preset: str = 'static',
                 dynamic: Optional[dict] = None,
                 temperature: float = 1.0,
                 strict_pretrained: bool = True,
                 out_indices=(1, 2, 4, 7),
                 init_cfg: Optional[Union[dict, list]] = None,
                 **kwargs) -> None:
        init_cfg = self._split_init_cfg(init_cfg, strict_pretrained)
        super().__init__(
            widen_factor=widen_factor,
            out_indices=out_indices,
            init_cfg=init_cfg,
            **kwargs)
        self.preset = preset
        self.layout = resolve_layout(MOBILENET_V2_PRESETS, preset, dynamic,
                                     _MBV2_DEFAULTS,
                                     type(self).__name__)
        self._make_dynamic_convs()
        set_temperature(self, temperature)
        self._freeze_stages()

    def _swap_conv_modules(self, module) -> None:
        for m in module.modules():
            if isinstance(m, ConvModule):
                m.conv = make_dynamic(m.conv, self.layout['conv_cfg'],
                                      self.norm_cfg)

    def _make_dynamic_convs(self) -> None:
        layout = self.layout
        if layout['stem']:
            self._swap_conv_modules(self.conv1)
        for stage, on in enumerate(layout['stages']):
            if on:
                self._swap_conv_modules(getattr(self, f'layer{stage + 1}'))
        if layout['last_conv']:
            self._swap_conv_modules(self.conv2)
