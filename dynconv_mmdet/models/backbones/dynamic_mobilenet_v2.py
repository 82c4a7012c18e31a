"""MobileNetV2 whose convolutions can be dynamic."""
import numbers
from typing import Any, Iterator, Mapping, Optional, Tuple, Union

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.backbones import MobileNetV2
from mmdet.models.utils import make_divisible
from mmdet.registry import MODELS

from .base import DynamicBackboneMixin, StageTable
from .layout import MOBILENET_V2_PRESETS


@MODELS.register_module()
class DynamicMobileNetV2(DynamicBackboneMixin, MobileNetV2):
    """mmdet's MobileNetV2 with dynamic convolutions placed by config.

    Keys, ``out_indices`` (0-6: ``layer1``-``layer7``, 7: the final 1x1 conv
    ``conv2``), ``frozen_stages``, ``norm_eval``, ``norm_cfg`` and ``with_cp``
    behave as in mmdet's :class:`~mmdet.models.backbones.MobileNetV2`. The
    default ``out_indices=(1, 2, 4, 7)`` feeds FPN with 24/32/96/1280 channels
    (widen factor 1.0), as the released ODConv detectors do.

    Args:
        widen_factor (float): 0.5, 0.75, 1.0, ...
        *args: mmdet MobileNetV2's other positional arguments.
        preset (str): A key of :attr:`presets` (see :mod:`.layout`).
        dynamic (dict, optional): Overrides: ``conv_cfg``, ``stages`` (7
            bools), ``last_conv`` and ``stem`` (bools), ``static``
            (``fnmatch`` patterns of module paths left static, e.g.
            ``('layer[1-5].*.linear_conv.conv', )``).
        temperature (float, optional): Temperature of the layers that have
            one; ``None``: each family's default.
        strict_pretrained (bool): Raise on any checkpoint mismatch.
        freeze_shared_state (bool): ``frozen_stages`` also freezes the state
            frozen dynamic convs share with others. Default: True.
        **kwargs: Other mmdet MobileNetV2 arguments.

    Our own arguments are keyword-only.
    """

    pretrained_arch = 'mobilenet_v2'
    presets = MOBILENET_V2_PRESETS
    layout_defaults = dict(
        conv_cfg=None,
        stages=(False, ) * 7,
        last_conv=False,
        stem=False,
        static=())

    def __init__(self,
                 widen_factor: float = 1.0,
                 *args,
                 preset: str = 'static',
                 dynamic: Optional[dict] = None,
                 temperature: Optional[float] = None,
                 strict_pretrained: bool = True,
                 freeze_shared_state: bool = True,
                 out_indices=(1, 2, 4, 7),
                 init_cfg: Optional[Union[dict, list]] = None,
                 pretrained: Optional[str] = None,
                 **kwargs) -> None:
        self._check_positional(args)
        if args:
            # mmdet's second positional argument is out_indices
            out_indices, args = args[0], args[1:]
        self._check_arguments(temperature, widen_factor, out_indices, *args,
                              **kwargs)
        init_cfg = self._split_init_cfg(init_cfg, strict_pretrained,
                                        pretrained)
        super().__init__(
            widen_factor, out_indices, *args, init_cfg=init_cfg, **kwargs)
        self._place_dynamic_convs(preset, dynamic, temperature,
                                  freeze_shared_state)

    @classmethod
    def stage_table(cls, arguments: Mapping[str, Any]) -> StageTable:
        """``layer1``-``layer7`` (the rows of mmdet's ``arch_settings``,
        widened and rounded to multiples of 8) and the last 1x1 conv
        ``conv2`` (1280 channels, widened only above 1.0); ``frozen_stages``
        up to 7 (``conv2`` is never frozen)."""
        widen = arguments['widen_factor']
        if not isinstance(widen, numbers.Real) or isinstance(
                widen, bool) or not widen > 0:
            raise ValueError(f'{cls.__name__}: widen_factor must be a '
                             f'positive number, e.g. 1.0; got {widen!r}')
        rows = cls.arch_settings
        last = int(1280 * widen) if widen > 1.0 else 1280
        return StageTable(
            names=tuple(f'layer{i + 1}'
                        for i in range(len(rows))) + ('conv2', ),
            channels=tuple(make_divisible(row[1] * widen, 8)
                           for row in rows) + (last, ),
            max_frozen=len(rows))

    def _dynamic_sites(self, layout: dict) -> Iterator[Tuple[nn.Module, str]]:
        parts = []
        if layout['stem']:
            parts.append(self.conv1)
        parts += [
            getattr(self, f'layer{stage + 1}')
            for stage, on in enumerate(layout['stages']) if on
        ]
        if layout['last_conv']:
            parts.append(self.conv2)
        for part in parts:
            for m in part.modules():
                if isinstance(m, ConvModule):
                    yield m, 'conv'
