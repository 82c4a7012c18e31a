"""The registered dynamic conv families, each with its own small example.

Generic tests parametrise over :func:`family_examples` instead of listing
families, so a family (of this package or of another one, once imported)
joins them by declaring ``example_kwargs`` on its class
(:class:`~dynconv_mmdet.models.layers.DynamicConv2d`).
"""
from typing import Any, Dict, List, Tuple, Type

from mmengine.registry import MODELS

from dynconv_mmdet.models.layers import DynamicConv2d

#: A small geometry every example is built with to probe what it keeps.
_PROBE = dict(in_channels=4, out_channels=4, kernel_size=3, padding=1)


def registered_families() -> List[Type[DynamicConv2d]]:
    """Every :class:`DynamicConv2d` subclass in mmengine's root ``MODELS``
    and its child registries, by name."""
    found: Dict[str, Type[DynamicConv2d]] = {}
    pending = [MODELS]
    while pending:
        registry = pending.pop()
        pending.extend(registry.children.values())
        for name, obj in registry.module_dict.items():
            if isinstance(obj, type) and issubclass(obj, DynamicConv2d):
                found.setdefault(name, obj)
    return [found[name] for name in sorted(found)]


def family_examples(
    variants: bool = False,
    own_kernels: bool = False
) -> Dict[str, Tuple[Type[DynamicConv2d], Dict[str, Any]]]:
    """``name -> (class, constructor arguments)`` of every family that
    gives an example of itself.

    Args:
        variants (bool): Also the families' ``example_variants``, named
            ``'<family>-<variant>'``.
        own_kernels (bool): Only families that mix kernels kept in their
            own ``weight`` ``[K, C_out, C_in / groups, kh, kw]`` (what the
            references of :mod:`dynconv_mmdet.testing` read).
    """
    examples = {}
    for cls in registered_families():
        if cls.example_kwargs is None:
            continue
        if own_kernels and not hasattr(
                cls(**_PROBE, **cls.example_kwargs), 'weight'):
            continue
        examples[cls.__name__] = (cls, dict(cls.example_kwargs))
        if variants:
            for variant, kwargs in cls.example_variants.items():
                examples[f'{cls.__name__}-{variant}'] = (cls, dict(kwargs))
    return examples


def build_example(name: str, *args: Any, **kwargs: Any) -> DynamicConv2d:
    """The example ``name`` of :func:`family_examples` (variants included)
    with the geometry given as ``nn.Conv2d``'s arguments."""
    cls, example = family_examples(variants=True)[name]
    return cls(*args, **example, **kwargs)
