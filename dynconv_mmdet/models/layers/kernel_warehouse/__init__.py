"""KernelWarehouse: kernels assembled from cells of a shared warehouse.

Li and Yao, "KernelWarehouse: Rethinking the Design of Dynamic Convolution",
ICML 2024 (arXiv 2406.07879); numerically the released module
(github OSVAI/KernelWarehouse, ``modules/kernel_warehouse.py``), with its
parameter names inside each conv so that official checkpoints map simply.

A KernelWarehouse (KW) conv splits its kernel ``[C_out, C_in / g, kh, kw]``
into ``m`` disjoint *mixtures* of one cell shape ``[c_out, c_in, 1, 1]`` and
computes each as a linear mixture of the ``n`` cells of a *warehouse* that the
convs of one stage share. The attention gives every mixture ``n + 1`` weights
(the last one for a zero cell) normalised by their absolute sum (the paper's
contrasting-driven attention function), blended with a fixed one-hot
assignment by the temperature ``T``: ``(1 - T) * attention + T * one_hot``.

Where things live (our design; one module each: the layers
:mod:`.layer` and :mod:`.linear`, their attention :mod:`.attention`, the
warehouse planner :mod:`.planner`, the warehouses' holder :mod:`.manager`):

* :class:`KWConv2d` is built by ``build_conv_layer`` like any conv, but its
  kernel does not exist yet: the cell shape and the attention width depend on
  every conv drawing from the same warehouse. The backbone (or
  :func:`~dynconv_mmdet.models.layers.groups.finalize_dynamic_convs`) calls
  :meth:`KWConv2d.finalize_group` once all convs are placed; it names the
  warehouses, creates them in a :class:`KernelWarehouseManager` registered
  on the owner as ``warehouse_manager`` (``warehouse_manager.weights.<i>``,
  ``i`` in the release's warehouse order, as the release stores them),
  partitions every kernel into cells, builds each conv's attention and
  one-hot assignment and initialises the cells as the release does
  (:func:`~.planner.finalize_warehouses`).
* The warehouse of a conv: its ``warehouse`` argument if given (taken
  verbatim); otherwise, inside an owner whose ``pretrained_arch`` has a
  registered namer (:func:`register_release_namer`: our ResNet and
  MobileNetV2 backbones register theirs in ``models/backbones/layout.py``,
  which knows mmdet's module paths; this package does not), the release's
  name (e.g. ``stage{s}_layer{l}_{conv}{c}``) of its module path, fused by
  ``sharing_range`` as the release does (:func:`fuse_warehouse_name`);
  otherwise a warehouse of its own, named by its module path. See
  ``docs/kernel_warehouse.md``.
"""
from .attention import NORMALISATION_EPS, KWAttention
from .layer import KWConv2d
from .linear import KWLinear
from .manager import KernelWarehouseManager
from .planner import (ReleaseNamer, fuse_warehouse_name,
                      register_release_namer, release_namer)

__all__ = [
    'NORMALISATION_EPS', 'KWAttention', 'KWConv2d', 'KWLinear',
    'KernelWarehouseManager', 'ReleaseNamer', 'fuse_warehouse_name',
    'register_release_namer', 'release_namer'
]
