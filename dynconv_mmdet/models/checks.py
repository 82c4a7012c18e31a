"""Checks of a model config that build nothing.

mmdet's FPN (and the other necks) compare their ``in_channels`` with the
backbone's outputs only in the first forward pass, after the runner, the
data loaders and the weights are set up. Our backbones know their output
channels from their architecture table
(:meth:`~.backbones.base.DynamicBackboneMixin.output_channels`), so a
config can be checked before anything is built.
"""
import copy
from typing import Any, List, Optional, Tuple

from mmdet.registry import MODELS
from mmengine.registry import DefaultScope

from .backbones.base import DynamicBackboneMixin

#: Necks that keep the channels of the backbone's last output (the
#: classification project's pooling), so a head's ``in_channels`` must be
#: that output's.
CHANNEL_KEEPING_NECKS = ('GlobalAveragePooling', )


def _backbone_class(type_name: Any) -> Optional[type]:
    """Our backbone class that ``type`` names (a class or a registered
    name, with or without a ``mmdet.`` scope); ``None`` for any other
    backbone."""
    if isinstance(type_name, type):
        cls = type_name
    elif isinstance(type_name, str):
        with DefaultScope.overwrite_default_scope('mmdet'):
            try:
                cls = MODELS.get(type_name)
            except KeyError:  # a scope mmdet does not know
                return None
    else:
        return None
    if isinstance(cls, type) and issubclass(cls, DynamicBackboneMixin):
        return cls
    return None


def backbone_output_channels(backbone_cfg: Any) -> Optional[Tuple[int, ...]]:
    """The channels of the outputs of the backbone ``backbone_cfg`` builds,
    in the order ``forward`` returns them, without building it.

    Args:
        backbone_cfg (dict): A backbone config (``cfg.model.backbone``).

    Returns:
        tuple[int] or None: ``None`` for a backbone that is not one of ours
        (this package cannot tell its channels without building it).

    Raises:
        TypeError, ValueError: Arguments our backbone refuses
            (``out_indices`` or ``frozen_stages`` out of range, an unknown
            depth, ...), with the message its constructor would give.
    """
    if not isinstance(backbone_cfg, dict):
        return None
    cls = _backbone_class(backbone_cfg.get('type'))
    if cls is None:
        return None
    kwargs = {k: v for k, v in backbone_cfg.items() if k != 'type'}
    return cls.output_channels(**copy.deepcopy(kwargs))


def _type_name(cfg: Any) -> str:
    """The class name a config's ``type`` names, without its scope."""
    type_name = cfg.get('type') if isinstance(cfg, dict) else None
    if isinstance(type_name, type):
        return type_name.__name__
    return str(type_name).rpartition('.')[2]


def neck_backbone_problems(model_cfg: Any, prefix: str = 'model') -> List[str]:
    """Find a neck (or, behind a channel-keeping neck such as
    ``GlobalAveragePooling``, a head) whose ``in_channels`` do not match the
    outputs of one of our backbones.

    * ``neck.in_channels`` given as a list (FPN, PAFPN, ChannelMapper,
      CSPNeXtPAFPN, YOLOXPAFPN, ...) must list the channels of the
      backbone's outputs, in order: one per ``out_indices`` entry.
    * With no neck, or a neck of :data:`CHANNEL_KEEPING_NECKS`, an integer
      ``head.in_channels`` (a classifier's) must be the channels of the
      backbone's last output.

    A model whose backbone is not one of ours, or whose neck takes a single
    integer, is not checked. When ``neck`` is a list, the first neck is the
    one that takes the backbone's outputs.

    Args:
        model_cfg (dict): The model config (``cfg.model``).
        prefix (str): Dotted name of ``model_cfg`` used in the messages.

    Returns:
        list[str]: One message per problem (empty if none), each naming the
        key, the value given and the expected one. Backbone arguments out of
        range are reported here too (with the backbone constructor's
        message), since the expected channels depend on them.
    """
    if not isinstance(model_cfg, dict):
        return []
    backbone = model_cfg.get('backbone')
    try:
        channels = backbone_output_channels(backbone)
    except (TypeError, ValueError) as err:
        return [f'{prefix}.backbone: {err}']
    if channels is None:
        return []
    where = (f'{prefix}.backbone ({_type_name(backbone)} with out_indices '
             f'{_out_indices(backbone)})')
    neck, neck_key = model_cfg.get('neck'), f'{prefix}.neck'
    if isinstance(neck, (list, tuple)) and neck:
        neck, neck_key = neck[0], f'{prefix}.neck[0]'
    if isinstance(neck, dict) and isinstance(
            neck.get('in_channels'), (list, tuple)):
        given = list(neck['in_channels'])
        if given != list(channels):
            return [
                f'{neck_key}.in_channels is {given}, but {where} gives '
                f'{len(channels)} outputs of {list(channels)} channels; set '
                f'{neck_key}.in_channels={list(channels)} or change '
                f'{prefix}.backbone.out_indices'
            ]
        return []
    head = model_cfg.get('head')
    keeps = neck is None or _type_name(neck) in CHANNEL_KEEPING_NECKS
    if keeps and isinstance(head, dict) and isinstance(
            head.get('in_channels'), int):
        if head['in_channels'] != channels[-1]:
            return [
                f'{prefix}.head.in_channels is {head["in_channels"]}, but '
                f'{where} ends with an output of {channels[-1]} channels; '
                f'set {prefix}.head.in_channels={channels[-1]}'
            ]
    return []


def _out_indices(backbone_cfg: dict) -> Any:
    """``out_indices`` as the backbone gets it (its default if not given)."""
    cls = _backbone_class(backbone_cfg.get('type'))
    kwargs = {k: v for k, v in backbone_cfg.items() if k != 'type'}
    return tuple(cls.mmdet_arguments(**kwargs)['out_indices'])


def check_neck_matches_backbone(model_cfg: Any, prefix: str = 'model') -> None:
    """Raise if the neck's ``in_channels`` do not match the backbone's
    outputs (see :func:`neck_backbone_problems`), before the model is built.

    Args:
        model_cfg (dict): The model config (``cfg.model``), detection or
            classification.
        prefix (str): Dotted name of ``model_cfg`` used in the messages.

    Raises:
        ValueError: Naming ``model.neck.in_channels`` (or
            ``model.head.in_channels``), the list given and the list
            expected for the backbone's ``out_indices``; or the backbone's
            own error for arguments out of range.
    """
    problems = neck_backbone_problems(model_cfg, prefix)
    if problems:
        raise ValueError('\n'.join(problems))


__all__ = [
    'CHANNEL_KEEPING_NECKS', 'backbone_output_channels',
    'check_neck_matches_backbone', 'neck_backbone_problems'
]
