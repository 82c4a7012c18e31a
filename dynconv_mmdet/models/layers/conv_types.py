"""Conv layer types known to the registries, and a helpful lookup error."""
from typing import List

from mmengine.registry import MODELS, Registry
from torch.nn.modules.conv import _ConvNd

from .base import DynamicConv2d


def _is_conv_layer(name: str, obj) -> bool:
    if not isinstance(obj, type):
        return False
    if issubclass(obj, (_ConvNd, DynamicConv2d)):
        return True
    return obj.__module__.startswith('mmcv.ops') and 'Conv' in obj.__name__


def _registry_chain() -> List[Registry]:
    with MODELS.switch_scope_and_registry(None) as registry:
        chain = []
        while registry is not None:
            chain.append(registry)
            registry = registry.parent
    return chain


def registered_conv_types() -> List[str]:
    """Conv layer names visible from the current scope (and its parents)."""
    names = set()
    for registry in _registry_chain():
        names.update(name for name, obj in registry.module_dict.items()
                     if _is_conv_layer(name, obj))
    return sorted(names)


def is_known_conv_type(layer_type) -> bool:
    """Whether ``build_conv_layer`` finds ``layer_type`` from this scope."""
    if isinstance(layer_type, type):
        return True
    return any(layer_type in registry.module_dict
               for registry in _registry_chain())


def get_conv_class(layer_type):
    """The class ``build_conv_layer`` builds for ``layer_type`` (a name or
    a class), or ``None`` if no registry in reach has it."""
    if isinstance(layer_type, type):
        return layer_type
    for registry in _registry_chain():
        if layer_type in registry.module_dict:
            return registry.module_dict[layer_type]
    return None


def check_conv_type(conv_cfg: dict) -> None:
    """Raise ``KeyError`` listing the registered conv types if unknown."""
    layer_type = conv_cfg.get('type')
    if is_known_conv_type(layer_type):
        return
    raise KeyError(
        f'unknown conv type {layer_type!r}; registered conv types: '
        f'{", ".join(registered_conv_types())}. A layer from another package '
        'must be imported first (custom_imports in the config).')
