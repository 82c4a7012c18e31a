"""What the dynamic CSP backbones (CSPNeXt, CSPDarknet) share.

mmdet's ``CSPNeXt`` (RTMDet) and ``CSPDarknet`` (YOLOX) have the same
skeleton: a stem (``stem``: CSPNeXt's three 3x3 ConvModules, CSPDarknet's
``Focus``) and stages ``stage1``... (a stride-2 3x3 conv, the last stage's
SPP bottleneck, a ``CSPLayer``). ``conv_cfg`` cannot place dynamic convs
there (CSPNeXt's stem and every CSPNeXt block's first 3x3 ignore it,
CSPDarknet passes it to its stem too), so the convs are swapped after
building, as in the other dynamic backbones.
"""
import copy
import inspect
import numbers
from typing import Any, Iterator, Mapping, Optional, Tuple, Union

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.backbones.csp_darknet import SPPBottleneck
from mmdet.models.layers import CSPLayer
from mmengine.model.weight_init import initialize

from ..layers import DynamicConv2d
from .base import DynamicBackboneMixin, StageTable, check_choice


def mmdet_default(cls: type, name: str):
    """The default of argument ``name`` of mmdet's ``cls.__init__``."""
    return copy.deepcopy(
        inspect.signature(cls.__init__).parameters[name].default)


#: An ``init_cfg``: one dict, a list of them, or none.
InitCfg = Optional[Union[dict, list]]

#: The parts of a CSP stage a layout can make dynamic (``parts``).
STAGE_PARTS = ('downsample', 'spp', 'csp', 'blocks')


def _stage_parts(stage: nn.Sequential) -> Iterator[Tuple[str, nn.Module]]:
    """``(kind, module)`` of a stage: its opening conv, the SPP bottleneck
    and the CSP layer's 1x1 convs and blocks."""
    for index, module in enumerate(stage):
        if index == 0:
            yield 'downsample', module
        elif isinstance(module, CSPLayer):
            yield 'csp', module.main_conv
            yield 'csp', module.short_conv
            yield 'blocks', module.blocks
            yield 'csp', module.final_conv
        elif isinstance(module, SPPBottleneck):
            yield 'spp', module
        else:
            raise TypeError(f'unexpected {type(module).__name__} in a CSP '
                            'stage')


def _stages_for(layout: Optional[dict], num_stages: int,
                owner: str) -> Optional[dict]:
    """A preset written for the P5 architecture (4 stages), for
    ``num_stages`` stages: a uniform ``stages`` is repeated."""
    if not layout or 'stages' not in layout:
        return layout
    stages = tuple(layout['stages'])
    if len(stages) != num_stages:
        if len(set(stages)) != 1:
            raise ValueError(
                f'{owner}: the preset stages {stages!r} do not fit '
                f'{num_stages} stages; give dynamic=dict(stages=...) with '
                f'{num_stages} booleans')
        layout = dict(layout, stages=stages[:1] * num_stages)
    return layout


class CSPBackboneMixin(DynamicBackboneMixin):
    """Placement, initialisation and arguments of the dynamic CSP backbones.

    Layout fields: ``conv_cfg``, ``stages`` (one bool per stage,
    ``stage1``...), ``stem`` and ``parts``. In a dynamic stage, ``parts``
    names the parts whose ``ConvModule`` convs become dynamic (default: all
    of :data:`STAGE_PARTS`):

    * ``'downsample'``: the stride-2 3x3 conv that opens the stage;
    * ``'spp'``: the SPP bottleneck's two 1x1 convs (last stage);
    * ``'csp'``: the ``CSPLayer``'s ``main_conv`` / ``short_conv`` /
      ``final_conv`` (1x1);
    * ``'blocks'``: every conv of the ``CSPLayer``'s blocks (CSPNeXt: the
      3x3 and both convs of the 5x5 depthwise-separable conv; Darknet: the
      1x1 and the 3x3).

    The ``CSPLayer``'s channel attention (a 1x1 ``nn.Conv2d`` on pooled
    features, itself an attention) stays static.
    """

    layout_defaults = dict(
        conv_cfg=None, stages=(False, ) * 4, stem=False, parts=STAGE_PARTS)

    def _init_csp(self, mmdet_cls: type, arch: str, args: tuple, kwargs: dict,
                  preset: str, dynamic: Optional[dict],
                  temperature: Optional[float], strict_pretrained: bool,
                  freeze_shared_state: bool, init_cfg: InitCfg,
                  pretrained: Optional[str]) -> None:
        """Build mmdet's backbone, then place the dynamic convs."""
        self._check_positional(args)
        self._check_arguments(temperature, arch, *args, **kwargs)
        init_cfg = self._split_init_cfg(init_cfg, strict_pretrained,
                                        pretrained)
        # mmdet's init_cfg (a Kaiming init of every nn.Conv2d) runs in
        # init_weights, before the dynamic convs' own init: see there.
        self._mmdet_init_cfg = init_cfg
        super().__init__(arch, *args, init_cfg=None, **kwargs)
        # mmdet's CSP backbones do not keep their norm_cfg; the attentions
        # of families that take the backbone's norm need it.
        self.norm_cfg = copy.deepcopy(
            kwargs.get('norm_cfg', mmdet_default(mmdet_cls, 'norm_cfg')))
        num_stages = len(self.layers) - 1
        if num_stages != len(self.layout_defaults['stages']):
            name = type(self).__name__
            self.layout_defaults = dict(
                self.layout_defaults, stages=(False, ) * num_stages)
            self.presets = {
                key: _stages_for(layout, num_stages, name)
                for key, layout in self.presets.items()
            }
        self._place_dynamic_convs(preset, dynamic, temperature,
                                  freeze_shared_state)

    @classmethod
    def stage_table(cls, arguments: Mapping[str, Any]) -> StageTable:
        """The stem and ``stage1``... of mmdet's ``arch_settings[arch]``
        (or ``arch_ovewrite``), rows ``[in, out, ...]`` times
        ``widen_factor``; ``frozen_stages`` up to the number of stages."""
        name = cls.__name__
        rows = arguments.get('arch_ovewrite')
        if not rows:
            check_choice(name, 'arch', arguments['arch'],
                         tuple(cls.arch_settings))
            rows = cls.arch_settings[arguments['arch']]
        widen = arguments['widen_factor']
        if not isinstance(widen, numbers.Real) or isinstance(
                widen, bool) or not widen > 0:
            raise ValueError(f'{name}: widen_factor must be a positive '
                             f'number, e.g. 0.375; got {widen!r}')
        return StageTable(
            names=('stem', ) + tuple(f'stage{i + 1}'
                                     for i in range(len(rows))),
            channels=(int(rows[0][0] * widen), ) +
            tuple(int(row[1] * widen) for row in rows),
            max_frozen=len(rows))

    def _dynamic_sites(self, layout: dict) -> Iterator[Tuple[nn.Module, str]]:
        kinds = tuple(layout['parts'])
        unknown = sorted(set(kinds) - set(STAGE_PARTS))
        if unknown or not kinds:
            raise ValueError(
                f'{type(self).__name__}: `parts` takes a non-empty subset of '
                f'{STAGE_PARTS}, got {kinds!r}')
        parts = [self.stem] if layout['stem'] else []
        for name, on in zip(self.layers[1:], layout['stages']):
            if on:
                parts += [
                    part for kind, part in _stage_parts(getattr(self, name))
                    if kind in kinds
                ]
        for part in parts:
            for m in part.modules():
                if isinstance(m, ConvModule):
                    yield m, 'conv'

    def init_weights(self) -> None:
        """mmdet's initialisation, the dynamic convs' own, then the
        checkpoint.

        mmdet's default for these backbones (Kaiming-uniform, fan_in, of
        every ``nn.Conv2d``) also reaches the 1x1 convs inside the
        attentions; each dynamic conv is re-initialised by its family
        afterwards (ODConv: as released), as it is in ``DynamicResNet`` /
        ``DynamicMobileNetV2``, whose mmdet init is the released one.
        """
        if not self.is_init and self._mmdet_init_cfg:
            initialize(self, copy.deepcopy(self._mmdet_init_cfg))
            for m in self.modules():
                if isinstance(m, DynamicConv2d):
                    m.init_weights()
        super().init_weights()
