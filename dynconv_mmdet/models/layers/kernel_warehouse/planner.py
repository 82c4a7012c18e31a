"""Planning the warehouses of a model's KernelWarehouse convs.

Which warehouse a conv draws from (its ``warehouse`` argument, the release's
name of its module path, or its own path), the cell shape and size of every
warehouse, and the release's one-hot assignment of each conv's mixtures to
cells: what :meth:`~.layer.KWConv2d.finalize_group` runs once all convs of an
owner are placed.

The release's conv names depend on the owner's module paths, which this
package does not know: whoever knows them (the backbones,
``models/backbones/layout.py``) registers a namer for the owner's
``pretrained_arch`` with :func:`register_release_namer`.
"""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch.nn as nn

from ..checks import check_positive_int
from .manager import KernelWarehouseManager

Number = Union[int, float]
#: A value for every warehouse, or one value per warehouse (in warehouse
#: order), as the release's ``parse``.
PerWarehouse = Union[Number, Sequence[Number]]
#: ``namer(owner, path)``: the release's name of the conv at ``path`` inside
#: ``owner``, or ``None`` for a conv the release does not name.
ReleaseNamer = Callable[[nn.Module, str], Optional[str]]

#: ``pretrained_arch`` of an owner -> its :data:`ReleaseNamer`.
_RELEASE_NAMERS: Dict[str, ReleaseNamer] = {}


def register_release_namer(arch: str, namer: ReleaseNamer) -> ReleaseNamer:
    """Name the convs of owners whose ``pretrained_arch`` is ``arch`` as the
    release does (``namer(owner, path)``); returns ``namer``."""
    _RELEASE_NAMERS[arch] = namer
    return namer


def release_namer(arch: Optional[str]) -> Optional[ReleaseNamer]:
    """The namer registered for ``arch``, or ``None``."""
    return _RELEASE_NAMERS.get(arch)


def fuse_warehouse_name(name: str, sharing_range: Union[str,
                                                        Sequence[str]]) -> str:
    """The warehouse that a conv named ``name`` draws from.

    The release's rule: every ``'_'``-separated token of ``name`` that starts
    with an entry of ``sharing_range`` is replaced by that entry (entries
    tried in order, each on the result of the previous one), so that
    ``('layer', 'conv')`` maps ``stage2_layer3_conv1`` to
    ``stage2_layer_conv``: one warehouse per stage.

    A string is iterated as the release iterates it, character by character:
    the release's json value ``"layer_conv"`` maps ``stage2_layer3_conv1`` to
    ``stage2_l_c``, which partitions the convs of its ResNets and
    MobileNetV2 exactly as ``('layer', 'conv')`` does (only the names
    differ).
    """
    tokens = []
    for token in name.split('_'):
        for prefix in sharing_range:
            if token.startswith(prefix):
                token = prefix
        tokens.append(token)
    return '_'.join(tokens)


def warehouse_name(conv, owner: nn.Module, path: str) -> str:
    """The warehouse that ``conv`` (at ``path`` inside ``owner``) draws
    from: its ``warehouse`` argument if given; otherwise the release's name
    of ``path`` (:func:`register_release_namer`) fused by its
    ``sharing_range``; otherwise ``path`` itself."""
    if conv.warehouse is not None:
        return conv.warehouse
    namer = release_namer(getattr(owner, 'pretrained_arch', None))
    name = namer(owner, path) if namer is not None else None
    if name is None:
        return path or 'default'
    return fuse_warehouse_name(name, conv.sharing_range)


def per_warehouse_setting(layer: str, arg: str, value, index: int,
                          names: Sequence[str]):
    """The release's ``parse``: one value for all warehouses or one each."""
    if not isinstance(value, (list, tuple)):
        return value
    if len(value) == 1:
        return value[0]
    if len(value) != len(names):
        raise ValueError(
            f'{layer}: {arg} gives {len(value)} values but these convs draw '
            f'from {len(names)} warehouses (in order: {", ".join(names)}); '
            'give one value, or one per warehouse')
    return value[index]


def check_per_warehouse(name: str,
                        arg: str,
                        value,
                        low: float,
                        low_inclusive: bool = False) -> None:
    """Refuse a per-warehouse setting that is not a finite number above
    ``low`` (or a non-empty sequence of them)."""
    values = value if isinstance(value, (list, tuple)) else [value]
    bad = not values or any(
        isinstance(v, bool) or not isinstance(v, (int, float))
        or not (v >= low if low_inclusive else v > low) or math.isinf(v)
        for v in values)
    if bad:
        raise ValueError(
            f'{name}: {arg} must be a number > {low:g} or a non-empty '
            f'sequence of them (one per warehouse), got {value!r}')


def check_warehouse_arguments(name: str, reduction, cell_num_ratio,
                              cell_inplane_ratio, cell_outplane_ratio,
                              nonlocal_basis_ratio, min_channels: int,
                              spatial_partition, sharing_range,
                              warehouse: Optional[str]) -> None:
    """Check the warehouse arguments of a KW conv (``name``: its class) as
    :class:`~.layer.KWConv2d` takes them; ``ValueError`` saying what is
    wrong."""
    check_per_warehouse(name, 'reduction', reduction, 0)
    for arg, value in (('cell_num_ratio', cell_num_ratio),
                       ('cell_inplane_ratio', cell_inplane_ratio),
                       ('cell_outplane_ratio', cell_outplane_ratio),
                       ('nonlocal_basis_ratio', nonlocal_basis_ratio)):
        check_per_warehouse(name, arg, value, 0)
    check_positive_int(name, 'min_channels', min_channels)
    partitions = spatial_partition if isinstance(
        spatial_partition, (list, tuple)) else [spatial_partition]
    if not partitions or not all(isinstance(p, bool) for p in partitions):
        raise ValueError(f'{name}: spatial_partition must be a bool or '
                         'a sequence of bools (one per warehouse), got '
                         f'{spatial_partition!r}')
    if isinstance(sharing_range, str):
        ranges = list(sharing_range)
    else:
        ranges = list(sharing_range) if isinstance(
            sharing_range, (list, tuple)) else [sharing_range]
    if not all(isinstance(r, str) and r for r in ranges):
        raise ValueError(f'{name}: sharing_range must be a string or a '
                         'sequence of non-empty name prefixes (e.g. '
                         f"('layer', 'conv')), got {sharing_range!r}")
    if warehouse is not None and not (isinstance(warehouse, str)
                                      and warehouse):
        raise ValueError(f'{name}: warehouse must be a non-empty name, '
                         f'got {warehouse!r}')


class WarehousePlan:
    """One warehouse being created by :func:`finalize_warehouses`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: List[Tuple[str, nn.Module]] = []  # the KW convs
        #: id(conv) -> (output cells, input cells, spatial cells)
        self.geometry: Dict[int, Tuple[int, int, int]] = {}
        #: id(conv) -> mixtures
        self.mixtures: Dict[int, int] = {}
        self.cell_num_ratio = 1.0
        self.num_cells = 0
        self.cell_shape: Tuple[int, ...] = ()
        self.index = -1  # in the manager
        self.end = 0  # cells allocated so far


def finalize_warehouses(owner: nn.Module,
                        convs: List[Tuple[str, nn.Module]]) -> None:
    """Create the warehouses of ``convs`` (KW convs, named relative to
    ``owner``) and complete each conv
    (:meth:`~.layer.KWConv2d.finalize_group`).

    Convs already finalised are left alone. Warehouses are created in
    the order their first conv appears (the release's order) on
    ``owner.warehouse_manager`` (created if absent), cells are allocated
    to the convs in module order, and each conv gets its attention and
    one-hot assignment. The release's cell init follows.

    Raises:
        ValueError: Settings that disagree inside one warehouse, cells
            that do not divide a conv's channels, or a ``cell_num_ratio``
            whose one-hot assignment does not use exactly the
            warehouse's cells (the release asserts this too).
    """
    pending = [(name, conv) for name, conv in convs if not conv.is_finalized]
    if not pending:
        return
    plans: Dict[str, WarehousePlan] = {}
    for name, conv in pending:
        key = warehouse_name(conv, owner, name)
        plans.setdefault(key, WarehousePlan(key)).members.append((name, conv))
    names = list(plans)
    for index, plan in enumerate(plans.values()):
        plan_cells(plan, index, names)
    manager = owner._modules.get('warehouse_manager')
    if manager is None:
        if hasattr(owner, 'warehouse_manager'):
            raise ValueError(
                f'{type(owner).__name__} has an attribute '
                'warehouse_manager; KWConv2d keeps its warehouses there')
        manager = KernelWarehouseManager()
    elif not isinstance(manager, KernelWarehouseManager):
        raise ValueError(
            f'{type(owner).__name__}.warehouse_manager is a '
            f'{type(manager).__name__}; KWConv2d keeps its warehouses '
            'there')
    clash = sorted(set(names) & set(manager.names))
    if clash:
        raise ValueError(
            f'KWConv2d: warehouses {clash} of {type(owner).__name__} are '
            'allocated already; finalise all convs of a warehouse at once')
    plan_of = {
        id(conv): plan
        for plan in plans.values()
        for _, conv in plan.members
    }
    # the release's one-hot assignment, in module order
    allocation = []
    for name, conv in pending:
        plan = plan_of[id(conv)]
        start = plan.end
        assignment, plan.end = assign_cells(start, plan.cell_num_ratio,
                                            plan.mixtures[id(conv)])
        allocation.append((name, conv, plan, start, plan.end, assignment))
    for plan in plans.values():
        if plan.end != plan.num_cells:
            raise ValueError(
                f'KWConv2d: cell_num_ratio={plan.cell_num_ratio} gives '
                f'warehouse {plan.name!r} {plan.num_cells} cells but the '
                f'one-hot assignment of its convs uses {plan.end} (as '
                'in the release, the ratio must be an integer, or 1/k '
                'with mixture counts that allow it)')
        plan.index = manager.add_warehouse(plan.name, plan.num_cells,
                                           plan.cell_shape)
    for name, conv, plan, start, end, assignment in allocation:
        conv.attach_warehouse(manager, plan, start, assignment,
                              names.index(plan.name), names)
        manager.allocations[plan.index].append((name, start, end))
    for plan in plans.values():
        manager.init_warehouse(plan.index)
    if owner._modules.get('warehouse_manager') is None:
        owner.add_module('warehouse_manager', manager)


def plan_cells(plan: WarehousePlan, index: int, names: List[str]) -> None:
    """Cell shape, mixtures per conv and size of one warehouse."""
    members = plan.members
    settings = {}
    for arg in ('cell_num_ratio', 'cell_inplane_ratio', 'cell_outplane_ratio',
                'spatial_partition'):
        values = {
            conv.warehouse_setting(arg, index, names)
            for _, conv in members
        }
        if len(values) != 1:
            raise ValueError(
                f'KWConv2d: the convs of warehouse {plan.name!r} '
                f'({", ".join(n for n, _ in members)}) disagree on '
                f'{arg}: {sorted(values)}')
        settings[arg] = values.pop()
    out_gcd = in_gcd = 0
    for _, conv in members:
        out_gcd = math.gcd(out_gcd, conv.out_channels)
        in_gcd = math.gcd(in_gcd, conv.in_channels // conv.groups)
    cell_in = max(int(in_gcd * settings['cell_inplane_ratio']), 1)
    cell_out = max(int(out_gcd * settings['cell_outplane_ratio']), 1)
    sizes = {conv.kernel_size for _, conv in members}
    if settings['spatial_partition']:
        cell_kernel = (1, 1)
    elif len(sizes) == 1:
        cell_kernel = sizes.pop()
    else:
        raise ValueError(
            f'KWConv2d: spatial_partition=False needs one kernel size '
            f'per warehouse; {plan.name!r} has {sorted(sizes)}')
    for name, conv in members:
        per_group = conv.in_channels // conv.groups
        if conv.out_channels % cell_out or per_group % cell_in:
            raise ValueError(
                f'KWConv2d {name}: cells of {cell_out} x {cell_in} '
                f'channels (warehouse {plan.name!r}) do not divide its '
                f'kernel of {conv.out_channels} x {per_group}; choose '
                'cell_outplane_ratio / cell_inplane_ratio that divide '
                'the channel gcd')
        geometry = (conv.out_channels // cell_out, per_group // cell_in,
                    (conv.kernel_size[0] // cell_kernel[0]) *
                    (conv.kernel_size[1] // cell_kernel[1]))
        plan.geometry[id(conv)] = geometry
        plan.mixtures[id(conv)] = math.prod(geometry)
    total = sum(plan.mixtures.values())
    plan.cell_num_ratio = settings['cell_num_ratio']
    plan.num_cells = max(int(total * plan.cell_num_ratio), 1)
    plan.cell_shape = (cell_out, cell_in) + tuple(cell_kernel)


def assign_cells(start: int, ratio: float,
                 mixtures: int) -> Tuple[List[int], int]:
    """The release's one-hot assignment of a conv's mixtures.

    ``ratio >= 1``: mixture ``j`` takes cell ``start + j * int(ratio)``.
    ``ratio < 1`` (``k = int(1 / ratio)``): mixture ``j`` takes the next
    cell when ``j % k == (j // k) % k``, the zero cell otherwise.

    Returns:
        tuple: Cell per mixture (``-1``: zero cell) and the end cell.
    """
    cells = []
    if ratio >= 1:
        step = int(ratio)
        for j in range(mixtures):
            cells.append(start + j * step)
        return cells, start + mixtures * step
    every = int(1.0 / ratio)
    for j in range(mixtures):
        if j % every == (j // every) % every:
            cells.append(start)
            start += 1
        else:
            cells.append(-1)
    return cells, start
