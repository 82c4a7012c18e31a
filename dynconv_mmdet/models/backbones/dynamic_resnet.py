"""ResNet whose convolutions can be dynamic."""
from typing import Any, Iterator, Mapping, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath
from mmdet.models.backbones import ResNet
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from mmdet.registry import MODELS

from .base import DynamicBackboneMixin, StageTable, check_choice, is_integer
from .layout import RESNET_PRESETS


class _DropResidualBranch:
    """Forward hook of the last module of a residual branch.

    Replaces the module's output ``[B, C, H, W]`` by ``drop_path(output)``,
    so that the block computes ``identity + drop_path(branch(x))``
    (stochastic depth: Huang et al., "Deep Networks with Stochastic Depth",
    ECCV 2016). ``drop_path`` is the block's own ``DropPath`` submodule,
    whose ``training`` flag follows the block's (not the norm's, which
    ``norm_eval`` keeps in eval mode).
    """

    def __init__(self, drop_path: nn.Module) -> None:
        self.drop_path = drop_path

    def __call__(self, module: nn.Module, args: Any,
                 output: torch.Tensor) -> torch.Tensor:
        return self.drop_path(output)


def _last_branch_module(block: nn.Module) -> nn.Module:
    """The module whose output ends the residual branch of an mmdet block
    (before ``+ identity``): ``norm2`` of a BasicBlock; ``norm3`` of a
    Bottleneck, or its last ``after_conv3`` plugin."""
    if isinstance(block, Bottleneck):
        plugins = getattr(block, 'after_conv3_plugin_names', None) \
            if block.with_plugins else None
        return getattr(block, plugins[-1]) if plugins else block.norm3
    if isinstance(block, BasicBlock):
        return block.norm2
    raise TypeError('DynamicResNet: drop_path_rate > 0 needs mmdet BasicBlock '
                    f'or Bottleneck blocks, got {type(block).__name__}; use '
                    'drop_path_rate=0 with other blocks')


@MODELS.register_module()
class DynamicResNet(DynamicBackboneMixin, ResNet):
    """mmdet's ResNet with dynamic convolutions placed by config.

    Keys, ``out_indices``, ``frozen_stages`` (frozen stages freeze their
    attention too), ``norm_eval`` (every BatchNorm, attention norms included),
    ``norm_cfg`` (a batch norm reaches the attention of families that take
    it, e.g. SyncBN) and ``with_cp`` behave as in mmdet's
    :class:`~mmdet.models.backbones.ResNet`.

    ``dcn`` / ``stage_with_dcn``: mmcv's DCN replaces ``conv2`` of the blocks
    of the DCN stages, as in mmdet, on the stages the layout leaves static
    and, on a dynamic stage, when ``block_convs`` leaves ``conv2`` out. A
    layout that makes a DCN ``conv2`` dynamic is refused (``ValueError``).

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        *args: mmdet ResNet's positional arguments (``in_channels``, ...).
        preset (str): A key of :attr:`presets` (``'static'``,
            ``'condconv8x'``, ``'dyconv4x'``, ``'odconv1x'``, ``'odconv4x'``,
            ...; see :mod:`.layout`).
        dynamic (dict, optional): Overrides of the preset's layout:
            ``conv_cfg`` (the dynamic conv, e.g. ``dict(type='ODConv2d',
            kernel_num=4)``), ``stages`` (one bool per stage),
            ``block_convs`` (names inside a block, default all: ``conv1``,
            ``conv2`` and, for Bottleneck, ``conv3``), ``downsample`` (bool,
            or ``'strided'``: only the downsample of blocks with stride > 1),
            ``stem`` (bool), ``static`` (``fnmatch`` patterns of module paths
            left static, e.g. ``('layer1.0.conv1', )``) and ``variants``
            (``{block type: overrides}``: fields that differ for the depths
            built of ``'BasicBlock'`` or ``'Bottleneck'``; their
            ``conv_cfg`` updates the layout's key by key).
        temperature (float, optional): Temperature of the layers that have
            one; ``None``: each family's default (its detection value).
        strict_pretrained (bool): Raise on any checkpoint mismatch.
        freeze_shared_state (bool): ``frozen_stages`` also freezes the state
            that frozen dynamic convs share with others (a family's shared
            kernels, e.g. KernelWarehouse cells). Default: True.
        drop_path_rate (float): Stochastic depth on the residual branch of
            every block, ``identity + drop_path(branch(x))``, with the same
            rate for every block (as the KernelWarehouse release's ResNets;
            mmpretrain's ResNet increases it linearly instead). Whole samples
            of a branch are dropped in training (the kept ones scaled by
            ``1 / (1 - rate)``); evaluation and frozen stages are unchanged.
            Each block then has a parameter-free ``drop_path`` submodule
            (state dict unchanged). Default: 0, mmdet's network exactly (no
            module, no hook).
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` (or mmdet's
            ``pretrained=...``) is loaded by the backbone itself (see
            :func:`dynconv_mmdet.checkpoint.load_pretrained`).
        **kwargs: Other mmdet ResNet arguments.

    Our own arguments are keyword-only. Input ``[B, 3, H, W]``; outputs one
    ``[B, C_i, H / s_i, W / s_i]`` per ``out_indices`` entry (``s_i`` = 4, 8,
    16, 32).
    """

    pretrained_arch = 'resnet'
    presets = RESNET_PRESETS
    layout_defaults = dict(
        conv_cfg=None,
        stages=(False, False, False, False),
        block_convs=None,
        downsample=False,
        stem=False,
        static=(),
        variants=None)

    def __init__(self,
                 depth: int,
                 *args,
                 preset: str = 'static',
                 dynamic: Optional[dict] = None,
                 temperature: Optional[float] = None,
                 strict_pretrained: bool = True,
                 freeze_shared_state: bool = True,
                 drop_path_rate: float = 0.0,
                 init_cfg: Optional[Union[dict, list]] = None,
                 pretrained: Optional[str] = None,
                 **kwargs) -> None:
        self._check_positional(args)
        self._check_arguments(temperature, depth, *args, **kwargs)
        init_cfg = self._split_init_cfg(init_cfg, strict_pretrained,
                                        pretrained)
        super().__init__(depth, *args, init_cfg=init_cfg, **kwargs)
        self._place_dynamic_convs(preset, dynamic, temperature,
                                  freeze_shared_state)
        self._add_drop_path(drop_path_rate)

    @classmethod
    def stage_table(cls, arguments: Mapping[str, Any]) -> StageTable:
        """``layer1``... of mmdet's ResNet: ``base_channels * 2**i`` times
        the block's expansion channels; ``frozen_stages`` up to
        ``num_stages``."""
        name = cls.__name__
        depth = arguments['depth']
        check_choice(name, 'depth', depth, tuple(cls.arch_settings))
        block, stage_blocks = cls.arch_settings[depth]
        num_stages = arguments['num_stages']
        if not is_integer(num_stages) or \
                not 1 <= num_stages <= len(stage_blocks):
            raise ValueError(f'{name}: num_stages must be an integer in '
                             f'1..{len(stage_blocks)}; got {num_stages!r}')
        base = arguments['base_channels']
        if not is_integer(base) or base < 1:
            raise ValueError(f'{name}: base_channels must be a positive '
                             f'integer; got {base!r}')
        return StageTable(
            names=tuple(f'layer{i + 1}' for i in range(num_stages)),
            channels=tuple(base * 2**i * block.expansion
                           for i in range(num_stages)),
            max_frozen=num_stages)

    def _add_drop_path(self, rate: float) -> None:
        """Stochastic depth with ``rate`` on every block's residual branch
        (nothing at all when 0)."""
        is_number = isinstance(rate,
                               (int, float)) and not isinstance(rate, bool)
        if not (is_number and 0.0 <= rate < 1.0):
            raise ValueError(
                f'{type(self).__name__}: drop_path_rate must be a number in '
                f'[0, 1), e.g. 0.1; got {rate!r}')
        self.drop_path_rate = float(rate)
        if self.drop_path_rate == 0.0:
            return
        for name in self.res_layers:
            for block in getattr(self, name):
                block.drop_path = DropPath(self.drop_path_rate)
                _last_branch_module(block).register_forward_hook(
                    _DropResidualBranch(block.drop_path))

    def _layout_variant(self) -> str:
        """``'BasicBlock'`` or ``'Bottleneck'``: the layout's ``variants``
        key for this depth."""
        return self.block.__name__

    def _dynamic_sites(self, layout: dict) -> Iterator[Tuple[nn.Module, str]]:
        if layout['downsample'] not in (True, False, 'strided'):
            raise ValueError(
                f'{type(self).__name__}: downsample must be True, False or '
                f"'strided', got {layout['downsample']!r}")
        if layout['stem']:
            if self.deep_stem:
                for i, m in enumerate(self.stem):
                    if isinstance(m, nn.Conv2d):
                        yield self.stem, str(i)
            else:
                yield self, 'conv1'
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
                    yield block, conv
                if layout['downsample'] and block.downsample is not None \
                        and (layout['downsample'] is True
                             or block.stride != 1):
                    for i, m in enumerate(block.downsample):
                        if isinstance(m, nn.Conv2d):
                            yield block.downsample, str(i)
