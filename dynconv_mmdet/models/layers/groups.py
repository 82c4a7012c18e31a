"""Families whose convs share state across a model: completing and
freezing them once a backbone has placed them all
(:meth:`~.base.DynamicConv2d.finalize_group`,
:meth:`~.base.DynamicConv2d.freeze_group`)."""
from typing import Dict, Iterable, List, Optional, Tuple

import torch.nn as nn

from .base import DynamicConv2d


def group_by_family(
    module: nn.Module,
    names: Optional[Iterable[str]] = None
) -> Dict[type, List[Tuple[str, DynamicConv2d]]]:
    """``{family class: [(name, conv), ...]}`` in module order (only the
    convs named in ``names`` when given)."""
    wanted = None if names is None else set(names)
    groups: Dict[type, List[Tuple[str, DynamicConv2d]]] = {}
    for name, m in module.named_modules():
        if isinstance(m, DynamicConv2d) and (wanted is None or name in wanted):
            groups.setdefault(type(m), []).append((name, m))
    return groups


def finalize_dynamic_convs(module: nn.Module) -> None:
    """Let every family complete its convs inside ``module``.

    Calls :meth:`DynamicConv2d.finalize_group` once per conv class found.
    Backbones call it after placing their dynamic convs; a model that places
    dynamic convs by other means calls it once, after building.
    """
    for cls, convs in group_by_family(module).items():
        cls.finalize_group(module, convs)


def freeze_dynamic_convs(module: nn.Module, names: Iterable[str]) -> None:
    """Let every family freeze the state its frozen convs share.

    Args:
        module (nn.Module): The model (e.g. a backbone).
        names (Iterable[str]): Names (relative to ``module``) of the dynamic
            convs that were frozen.
    """
    for cls, convs in group_by_family(module, names).items():
        cls.freeze_group(module, convs)
