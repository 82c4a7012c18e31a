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

Where things live (our design):

* :class:`KWConv2d` is built by ``build_conv_layer`` like any conv, but its
  kernel does not exist yet: the cell shape and the attention width depend on
  every conv drawing from the same warehouse. The backbone (or
  :func:`~.base.finalize_dynamic_convs`) calls :meth:`KWConv2d.finalize_group`
  once all convs are placed; it names the warehouses, creates them in a
  :class:`KernelWarehouseManager` registered on the owner as
  ``warehouse_manager`` (``warehouse_manager.weights.<i>``, ``i`` in the
  release's warehouse order, as the release stores them), partitions every
  kernel into cells, builds each conv's attention and one-hot assignment and
  initialises the cells as the release does.
* The warehouse of a conv: its ``warehouse`` argument if given (taken
  verbatim); otherwise, inside a backbone whose ``pretrained_arch`` is known
  (``'resnet'``, ``'mobilenet_v2'``), the release's name
  ``stage{s}_layer{l}_{conv}{c}`` derived from the module path (with the
  release's hand-over of a stage's first convs to the previous stage's
  warehouse), fused by ``sharing_range`` as the release does
  (:func:`fuse_warehouse_name`); otherwise a warehouse of its own, named by
  its module path. See ``docs/kernel_warehouse.md``.
"""
import math
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.registry import MODELS
from torch import Tensor

from .base import (DynamicAttention, DynamicConv2d, IntOrPair,
                   TemperatureMixin, _check_positive_int, global_average,
                   init_attention_weights, normalise_pooled)
from .functional import conv2d_per_sample

Number = Union[int, float]
#: A value for every warehouse, or one value per warehouse (in warehouse
#: order), as the release's ``parse``.
PerWarehouse = Union[Number, Sequence[Number]]

#: Added to the absolute sum of a mixture's logits (the release's value).
NORMALISATION_EPS = 1e-3


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


# ----------------------------------------------------------------------
# The release's conv names in our backbones
def _resnet_release_name(owner: nn.Module, path: str) -> Optional[str]:
    """``stage{s}_layer{l}_conv{c}`` of ``kw_resnet.py`` for a conv of an
    mmdet ResNet (``layer{i}.{b}.conv{j}`` / ``layer{i}.{b}.downsample.0``).

    The first block of a stage hands over: its ``conv1`` and its downsample
    draw from the previous stage's warehouse (a BasicBlock's first
    ``conv1`` of stage 0 stays in stage 0; a Bottleneck's is ``stage-1``,
    static in the release). ``l`` counts the blocks as the release does.
    """
    match = re.fullmatch(r'layer(\d+)\.(\d+)\.(conv(\d)|downsample\.0)', path)
    if match is None:
        return None
    stage, block = int(match.group(1)) - 1, int(match.group(2))
    # the release's layer counter at the first block of this stage
    first = len(owner.get_submodule(f'layer{stage}')) if stage > 0 else 0
    if match.group(4) is None:  # downsample
        return f'stage{stage - 1}_layer{first + 1}_conv0'
    position = int(match.group(4)) - 1
    if block > 0:
        return f'stage{stage}_layer{block}_conv{position}'
    if position == 0:
        bottleneck = hasattr(owner.get_submodule('layer1.0'), 'conv3')
        previous = stage - 1 if bottleneck else max(stage - 1, 0)
        return f'stage{previous}_layer{first}_conv0'
    return f'stage{stage}_layer0_conv{position}'


#: KW stage of each MobileNetV2 layer (``kw_mobilenetv2.py``): layers 6 and
#: 7 share stage 6.
_MOBILENET_V2_KW_STAGES = (1, 2, 3, 4, 5, 6, 6)
_MOBILENET_V2_CONVS = dict(
    expand_conv='pwconv0', depthwise_conv='dwconv0', linear_conv='pwconv1')


def _mobilenet_v2_release_name(owner: nn.Module, path: str) -> Optional[str]:
    """``stage{s}_layer{l}_{pw|dw}conv{c}`` of ``kw_mobilenetv2.py`` for a
    conv of mmdet's MobileNetV2 (``conv1.conv``, ``layer{i}.{b}.
    {expand,depthwise,linear}_conv.conv``, ``conv2.conv``).

    The first block of a layer that starts a new KW stage belongs to the
    previous stage (hand-over of a whole block); ``l`` counts the blocks as
    the release does (reset after each hand-over).
    """
    if path == 'conv1.conv':
        return 'stage0_conv0'
    stages = _MOBILENET_V2_KW_STAGES
    counter, names = 0, {}
    for i, kw_stage in enumerate(stages):
        for b in range(len(owner.get_submodule(f'layer{i + 1}'))):
            handover = b == 0 and i > 0 and kw_stage != stages[i - 1]
            names[(i + 1, b)] = (kw_stage - 1 if handover else kw_stage,
                                 counter)
            counter = 0 if handover else counter + 1
    if path == 'conv2.conv':
        return f'stage{stages[-1]}_layer{counter}_pwconv1'
    match = re.fullmatch(r'layer(\d+)\.(\d+)\.(\w+_conv)\.conv', path)
    if match is None or match.group(3) not in _MOBILENET_V2_CONVS:
        return None
    stage, layer = names[(int(match.group(1)), int(match.group(2)))]
    return f'stage{stage}_layer{layer}_{_MOBILENET_V2_CONVS[match.group(3)]}'


#: ``pretrained_arch`` of a backbone -> the release's name of a conv path.
RELEASE_NAMES: Dict[str, Callable[[nn.Module, str], Optional[str]]] = {
    'resnet': _resnet_release_name,
    'mobilenet_v2': _mobilenet_v2_release_name,
}


# ----------------------------------------------------------------------
class KernelWarehouseManager(nn.Module):
    """The warehouses of one model.

    ``weights[i]`` holds the cells of warehouse ``i``, shape
    ``[n_i, c_out, c_in, ckh, ckw]``, in the order the release creates them
    (so the release's ``warehouse_manager.weights.<i>`` keys map by index).
    :attr:`names` gives each warehouse's name and :attr:`allocations` the
    ``(conv name, first cell, end cell)`` ranges the release initialises.
    """

    def __init__(self) -> None:
        super().__init__()
        self.weights = nn.ParameterList()
        self.names: List[str] = []
        self.allocations: List[List[Tuple[str, int, int]]] = []

    def add_warehouse(self, name: str, num_cells: int,
                      cell_shape: Tuple[int, ...]) -> int:
        """Create an (uninitialised) warehouse; return its index."""
        if name in self.names:
            raise ValueError(f'KernelWarehouseManager: a warehouse {name!r} '
                             'exists already and its cells are allocated; '
                             'finalise every conv of a warehouse at once')
        self.weights.append(nn.Parameter(torch.empty(num_cells, *cell_shape)))
        self.names.append(name)
        self.allocations.append([])
        return len(self.names) - 1

    @torch.no_grad()
    def init_warehouse(self, index: int) -> None:
        """Kaiming-normal (fan_out, ReLU) init of every conv's cell range, as
        the release (the range viewed as ``[cells * c_out, c_in, ...]``)."""
        cells = self.weights[index]
        for _, start, end in self.allocations[index]:
            if end > start:
                nn.init.kaiming_normal_(
                    cells[start:end].view(-1, *cells.shape[2:]),
                    mode='fan_out',
                    nonlinearity='relu')

    def init_weights(self) -> None:
        """Re-initialise every warehouse as the release does."""
        for index in range(len(self.names)):
            self.init_warehouse(index)

    def forward(self, x: Tensor) -> Tensor:
        """Identity: the manager only holds cells, so an owner that runs
        its children in order (an ``nn.Sequential``) passes through it."""
        return x

    def extra_repr(self) -> str:
        return ', '.join(f'{name}: {tuple(w.shape)}'
                         for name, w in zip(self.names, self.weights))


class KWAttention(nn.Module):
    """The attention of one KW conv (the release's ``Attention``).

    ``GAP -> fc1 (C_in -> A, no bias with a norm) -> norm1 -> ReLU -> fc2``
    to ``n + 1`` logits for each of the ``m`` mixtures (``n`` cells and the
    zero cell), ``A = max(int(C_in * reduction), min_channels)``. With
    ``nonlocal_basis_ratio < 1`` (the release's ResNet-50 1/2x), ``fc2``
    gives logits for the conv's own (local) cells, ``b`` basis logits and the
    zero cell, and ``fc3`` (``b -> n - local``, no bias) maps the basis to
    the other convs' cells; ``basis_bias`` is added to all logits. The logits
    of each mixture are divided by ``sum |logits| + 1e-3`` and blended with
    the one-hot assignment ``temp_bias`` (not saved, as in the release).

    A BatchNorm ``norm1`` in training mode normalises a batch of one sample
    with its running statistics and leaves them unchanged (the release fails
    there); SyncBN across processes uses the global batch.

    Args:
        in_channels (int): ``C_in`` of the conv.
        num_cells (int): ``n``, cells of the warehouse.
        num_mixtures (int): ``m``, mixtures (cells) of the conv's kernel.
        assignment (list[int]): The one-hot cell of each mixture (``n``: the
            zero cell).
        start_cell (int): First cell of the conv's own range.
        reduction (float): Hidden width ratio.
        min_channels (int): Minimal hidden width.
        cell_num_ratio (float): The warehouse's ``cell_num_ratio``.
        nonlocal_basis_ratio (float): ``< 1`` enables the non-local basis.
        norm_cfg (dict, optional): The norm; ``None``: no norm, ``fc1``
            has a bias.
    """

    def __init__(
        self,
        in_channels: int,
        num_cells: int,
        num_mixtures: int,
        assignment: Sequence[int],
        start_cell: int,
        reduction: float = 1 / 16,
        min_channels: int = 16,
        cell_num_ratio: float = 1.0,
        nonlocal_basis_ratio: float = 1.0,
        norm_cfg: Optional[dict] = dict(type='BN')
    ) -> None:
        super().__init__()
        hidden = max(int(in_channels * reduction), min_channels)
        self.hidden_channels = hidden
        self.num_cells = num_cells
        self.num_mixtures = num_mixtures
        self.logits_per_mixture = num_cells + 1
        self.num_local_cells = int(cell_num_ratio * num_mixtures)
        self.num_nonlocal_cells = num_cells - self.num_local_cells
        self.start_cell = start_cell
        self.fc1 = nn.Linear(in_channels, hidden, bias=norm_cfg is None)
        self.norm1 = None if norm_cfg is None else build_norm_layer(
            norm_cfg, hidden)[1]
        planes = self.logits_per_mixture * num_mixtures
        if nonlocal_basis_ratio >= 1.0:
            self.num_basis = 0
            self.fc2 = nn.Linear(hidden, planes, bias=True)
        else:
            self.num_basis = max(
                int(self.num_nonlocal_cells * nonlocal_basis_ratio), 16)
            self.fc2 = nn.Linear(
                hidden,
                (self.num_local_cells + self.num_basis + 1) * num_mixtures,
                bias=False)
            self.fc3 = nn.Linear(
                self.num_basis, self.num_nonlocal_cells, bias=False)
            self.basis_bias = nn.Parameter(torch.zeros(planes))
        self._assignment = tuple(int(c) for c in assignment)
        one_hot = torch.zeros(num_mixtures, self.logits_per_mixture)
        one_hot[torch.arange(num_mixtures), torch.as_tensor(assignment)] = 1
        self.register_buffer('temp_bias', one_hot.flatten(), persistent=False)
        self.init_weights()

    @property
    def assignment(self) -> Tuple[int, ...]:
        """The one-hot cell of each mixture (``n``: the zero cell)."""
        return self._assignment

    def init_weights(self) -> None:
        """Kaiming-normal (fan_out) Linear weights, zero biases, norm 1/0."""
        init_attention_weights(self, (nn.Linear, ))
        if self.num_basis:
            nn.init.zeros_(self.basis_bias)

    def _normalise(self, z: Tensor) -> Tensor:
        return normalise_pooled(self.norm1, z)

    def _map_to_cells(self, logits: Tensor) -> Tensor:
        """Non-local basis -> logits of every cell (the release's order:
        other convs' cells before and after the conv's own range)."""
        local = self.num_local_cells
        z = logits.reshape(-1, local + self.num_basis + 1)
        nonlocal_ = self.fc3(z[:, local:-1])
        start = self.start_cell
        z = torch.cat([
            nonlocal_[:, :start], z[:, :local], nonlocal_[:, start:], z[:, -1:]
        ],
                      dim=1)
        return z.reshape(logits.size(0), -1) + self.basis_bias

    def forward(self, x: Tensor, temperature: float) -> Tensor:
        """Input ``[B, C_in, H, W]`` -> cell weights ``[B, m, n]``."""
        batch = x.size(0)
        z = F.relu(self._normalise(self.fc1(global_average(x))))
        logits = self.fc2(z)
        if self.num_basis:
            logits = self._map_to_cells(logits)
        a = logits.reshape(-1, self.logits_per_mixture)
        a = a / (a.abs().sum(dim=1, keepdim=True) + NORMALISATION_EPS)
        if temperature != 0:
            a = ((1.0 - temperature) * a.reshape(batch, -1) +
                 temperature * self.temp_bias.to(a.dtype))
        a = a.reshape(batch, self.num_mixtures, self.logits_per_mixture)
        return a[:, :, :-1]


# ----------------------------------------------------------------------
def _per_warehouse(layer: str, arg: str, value, index: int,
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


def _check_per_warehouse(name: str,
                         arg: str,
                         value,
                         low: float,
                         low_inclusive: bool = False) -> None:
    values = value if isinstance(value, (list, tuple)) else [value]
    bad = not values or any(
        isinstance(v, bool) or not isinstance(v, (int, float))
        or not (v >= low if low_inclusive else v > low) or math.isinf(v)
        for v in values)
    if bad:
        raise ValueError(
            f'{name}: {arg} must be a number > {low:g} or a non-empty '
            f'sequence of them (one per warehouse), got {value!r}')


class _Plan:
    """One warehouse being created by :meth:`KWConv2d.finalize_group`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: List[Tuple[str, 'KWConv2d']] = []
        #: id(conv) -> (output cells, input cells, spatial cells)
        self.geometry: Dict[int, Tuple[int, int, int]] = {}
        #: id(conv) -> mixtures
        self.mixtures: Dict[int, int] = {}
        self.cell_num_ratio = 1.0
        self.num_cells = 0
        self.cell_shape: Tuple[int, ...] = ()
        self.index = -1  # in the manager
        self.end = 0  # cells allocated so far


@MODELS.register_module()
class KWConv2d(TemperatureMixin, DynamicConv2d):
    """KernelWarehouse convolution (Li and Yao, ICML 2024), a drop-in conv.

    ``W_b = assemble_j(sum_i alpha_bji * e_i)``: mixture ``j`` of the kernel
    of sample ``b`` is the attention-weighted sum of the warehouse cells
    ``e_1 .. e_n``; ``y_b = conv(x_b, W_b) + bias``. The cells live in a
    warehouse shared by the convs of a stage (see the module docstring):
    the layer works once :meth:`finalize_group` has run, which a dynamic
    backbone does after placing its convs (otherwise call
    :func:`~.base.finalize_dynamic_convs` on the model).

    Cell shape (the release's rule, per warehouse): ``c_in = max(int(gcd of
    the warehouse's C_in / g * cell_inplane_ratio), 1)``, ``c_out`` likewise
    from the ``C_out``; 1x1 spatial cells (``spatial_partition``). A conv has
    ``m = C_out / c_out * C_in / g / c_in * kh * kw`` mixtures; the warehouse
    holds ``n = max(int(sum of m * cell_num_ratio), 1)`` cells.

    Temperature ``T`` in ``[0, 1]``: ``(1 - T) * attention + T * one_hot``.
    ImageNet anneals it from 1 (every mixture is its assigned cell: a static
    network) to 0 over the first 20 epochs (15 for MobileNetV2); detection
    keeps it at 0 (the default).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
            groups, bias: As :class:`~.base.DynamicConv2d` (``bias`` is a
            zero-initialised static bias, as released).
        reduction (float | sequence): Hidden width ratio of the attention.
            Default: 1/16.
        cell_num_ratio (float | sequence): Cells of the warehouse / mixtures
            of its convs (the paper's ``n`` multiplier: 1/4, 1/2, 1, 2, 4).
        cell_inplane_ratio, cell_outplane_ratio (float | sequence): Cell
            channels / gcd of the warehouse's channels.
        sharing_range (str | sequence[str]): Name prefixes fused into one
            warehouse (:func:`fuse_warehouse_name`).
            Default: ``('layer', 'conv')``, one warehouse per stage.
        nonlocal_basis_ratio (float | sequence): ``< 1``: the non-local
            basis of :class:`KWAttention`. Default: 1 (off).
        spatial_partition (bool | sequence): 1x1 spatial cells (else whole
            kernels, all of one size per warehouse). Default: True.
        min_channels (int): Minimal hidden width. Default: 16.
        warehouse (str, optional): Name of the warehouse to draw from (used
            verbatim); default: the release's rule (module docstring).
        temperature (float, optional): ``T``; ``None``: 0.
        norm_cfg (dict, optional): Attention norm (``norm1``). Default: BN.

    A sequence gives one value per warehouse, in warehouse order, as the
    release's per-warehouse settings (MobileNetV2 1/2x).

    Shapes: input ``[B, C_in, H, W]``, output ``[B, C_out, H', W']``, cells
    ``[n, c_out, c_in, 1, 1]``.
    """

    temperature_default = 0.0
    temperature_range = (0.0, 1.0)
    temperature_low_inclusive = True
    temperature_schedule = dict(start=1.0, end=0.0, epochs=20)
    temperature_doc = ('weight of the fixed one-hot cell assignment, '
                       '(1 - T) * attention + T * one_hot; 1: the static '
                       'network that ImageNet annealing starts from, 0: the '
                       'attention alone (after annealing, detection)')
    takes_backbone_norm = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        padding: IntOrPair = 0,
        dilation: IntOrPair = 1,
        groups: int = 1,
        bias: bool = False,
        reduction: PerWarehouse = 1 / 16,
        cell_num_ratio: PerWarehouse = 1.0,
        cell_inplane_ratio: PerWarehouse = 1.0,
        cell_outplane_ratio: PerWarehouse = 1.0,
        sharing_range: Union[str, Sequence[str]] = ('layer', 'conv'),
        nonlocal_basis_ratio: PerWarehouse = 1.0,
        spatial_partition: Union[bool, Sequence[bool]] = True,
        min_channels: int = 16,
        warehouse: Optional[str] = None,
        temperature: Optional[float] = None,
        norm_cfg: Optional[dict] = dict(type='BN')
    ) -> None:
        name = type(self).__name__
        _check_per_warehouse(name, 'reduction', reduction, 0)
        for arg, value in (('cell_num_ratio', cell_num_ratio),
                           ('cell_inplane_ratio', cell_inplane_ratio),
                           ('cell_outplane_ratio', cell_outplane_ratio),
                           ('nonlocal_basis_ratio', nonlocal_basis_ratio)):
            _check_per_warehouse(name, arg, value, 0)
        _check_positive_int(name, 'min_channels', min_channels)
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
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            num_kernels=None)
        self.reduction = reduction
        self.cell_num_ratio = cell_num_ratio
        self.cell_inplane_ratio = cell_inplane_ratio
        self.cell_outplane_ratio = cell_outplane_ratio
        self.sharing_range = sharing_range
        self.nonlocal_basis_ratio = nonlocal_basis_ratio
        self.spatial_partition = spatial_partition
        self.min_channels = min_channels
        self.warehouse = warehouse
        self.norm_cfg = norm_cfg
        self.temperature = temperature
        self._manager: Tuple[KernelWarehouseManager, ...] = ()
        self.attention: Optional[KWAttention] = None
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    # ------------------------------------------------------------------
    # State that finalize_group sets
    @property
    def is_finalized(self) -> bool:
        """Whether the conv has its warehouse and attention."""
        return bool(self._manager)

    @property
    def manager(self) -> KernelWarehouseManager:
        """The manager holding this conv's warehouse (not a submodule of
        the conv: it is its owner's ``warehouse_manager``)."""
        self._require_finalized()
        return self._manager[0]

    @property
    def cells(self) -> nn.Parameter:
        """The cells of this conv's warehouse, ``[n, c_out, c_in, ...]``."""
        return self.manager.weights[self.warehouse_index]

    @property
    def num_kernels(self) -> int:
        """``n``: the cells each mixture chooses from."""
        self._require_finalized()
        return self.attention.num_cells

    @property
    def num_mixtures(self) -> int:
        """``m``: the cells of this conv's kernel."""
        self._require_finalized()
        return self.attention.num_mixtures

    def _require_finalized(self) -> None:
        if not self._manager:
            raise RuntimeError(
                f'{type(self).__name__}({self.in_channels}, '
                f'{self.out_channels}, kernel_size={self.kernel_size}) has '
                'no kernel warehouse yet: KernelWarehouse convs share cells '
                'across a model, created once every conv is placed. Place '
                'KW convs through a dynamic backbone (preset= or dynamic=, '
                'which finalises them), or call dynconv_mmdet.models.layers.'
                'finalize_dynamic_convs(model) once after building the model.')

    def _release_name(self, owner: nn.Module, path: str) -> str:
        """The warehouse this conv draws from inside ``owner``."""
        if self.warehouse is not None:
            return self.warehouse
        namer = RELEASE_NAMES.get(getattr(owner, 'pretrained_arch', None))
        name = namer(owner, path) if namer is not None else None
        if name is None:
            return path or 'default'
        return fuse_warehouse_name(name, self.sharing_range)

    def _setting(self, arg: str, index: int, names: Sequence[str]):
        return _per_warehouse(
            type(self).__name__, arg, getattr(self, arg), index, names)

    @classmethod
    def finalize_group(cls, owner: nn.Module,
                       convs: List[Tuple[str, 'KWConv2d']]) -> None:
        """Create the warehouses of ``convs`` and complete each conv.

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
        pending = [(name, conv) for name, conv in convs if not conv._manager]
        if not pending:
            return
        plans: Dict[str, _Plan] = {}
        for name, conv in pending:
            key = conv._release_name(owner, name)
            plans.setdefault(key, _Plan(key)).members.append((name, conv))
        names = list(plans)
        for index, plan in enumerate(plans.values()):
            cls._plan_cells(plan, index, names)
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
            assignment, plan.end = cls._assign(start, plan.cell_num_ratio,
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
            conv._attach(manager, plan, start, assignment,
                         names.index(plan.name), names)
            manager.allocations[plan.index].append((name, start, end))
        for plan in plans.values():
            manager.init_warehouse(plan.index)
        if owner._modules.get('warehouse_manager') is None:
            owner.add_module('warehouse_manager', manager)

    @classmethod
    def _plan_cells(cls, plan: _Plan, index: int, names: List[str]) -> None:
        """Cell shape, mixtures per conv and size of one warehouse."""
        members = plan.members
        settings = {}
        for arg in ('cell_num_ratio', 'cell_inplane_ratio',
                    'cell_outplane_ratio', 'spatial_partition'):
            values = {conv._setting(arg, index, names) for _, conv in members}
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

    @staticmethod
    def _assign(start: int, ratio: float,
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

    def _attach(self, manager: KernelWarehouseManager, plan: _Plan, start: int,
                assignment: List[int], index: int, names: List[str]) -> None:
        """Join warehouse ``plan`` with cells ``start..``: attention built."""
        self.groups_out, self.groups_in, self.groups_spatial = \
            plan.geometry[id(self)]
        self.cell_shape = plan.cell_shape
        self.warehouse_index = plan.index
        self.warehouse_name = plan.name
        self.warehouse_cell_num_ratio = plan.cell_num_ratio
        n = plan.num_cells
        self.attention = KWAttention(
            self.in_channels,
            n,
            len(assignment), [n if c < 0 else c for c in assignment],
            start,
            reduction=self._setting('reduction', index, names),
            min_channels=self.min_channels,
            cell_num_ratio=plan.cell_num_ratio,
            nonlocal_basis_ratio=self._setting('nonlocal_basis_ratio', index,
                                               names),
            norm_cfg=self.norm_cfg)
        self._manager = (manager, )

    @classmethod
    def freeze_group(cls, owner: nn.Module,
                     convs: List[Tuple[str, 'KWConv2d']]) -> None:
        """Freeze the warehouses that the frozen ``convs`` draw from (also
        for the unfrozen convs drawing from them: a stage's first block
        draws from the previous stage's warehouse)."""
        for _, conv in convs:
            if conv.is_finalized:
                conv.cells.requires_grad_(False)

    # ------------------------------------------------------------------
    def init_weights(self) -> None:
        """Attention as released (Kaiming fan_out, norm 1/0), zero bias.
        The cells are initialised by their manager."""
        if self.attention is not None:
            self.attention.init_weights()
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def kw_attention(self, x: Tensor) -> Tensor:
        """Cell weights of every mixture, ``[B, m, n]``."""
        self._require_finalized()
        return self.attention(x, self.temperature)

    def compute_attention(self, x: Tensor) -> DynamicAttention:
        """The kernel attention: the weight of every cell in every mixture,
        ``kernel`` of shape ``[B, m * n]``."""
        attn = self.kw_attention(x)
        return DynamicAttention(kernel=attn.reshape(attn.size(0), -1))

    def assemble_kernels(self, attn: Tensor) -> Tensor:
        """Per-sample kernels from cell weights ``[B, m, n]``.

        One matrix product ``[B * m, n] @ [n, c_out * c_in]`` gives every
        mixture; they are laid out as the release does (mixture order:
        spatial position, output cell, input cell).

        Returns:
            Tensor: ``[B, C_out, C_in / groups, kh, kw]``.
        """
        cells = self.cells
        n = cells.size(0)
        batch = attn.size(0)
        mixed = torch.mm(attn.reshape(-1, n), cells.reshape(n, -1))
        mixed = mixed.view(batch, self.groups_spatial, self.groups_out,
                           self.groups_in, *self.cell_shape)
        mixed = mixed.permute(0, 2, 4, 3, 5, 1, 6, 7)
        return mixed.reshape(batch, self.out_channels,
                             self.in_channels // self.groups,
                             *self.kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        """Input ``[B, C_in, H, W]`` -> output ``[B, C_out, H', W']``."""
        self._require_finalized()
        self.check_input(x)
        kernels = self.assemble_kernels(self.kw_attention(x))
        out = conv2d_per_sample(x, kernels, self.stride, self.padding,
                                self.dilation, self.groups)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1).to(out.dtype)
        return out

    # ------------------------------------------------------------------
    # What the family is
    def produced_attentions(self) -> Tuple[str, ...]:
        """The cell weights (:meth:`compute_attention`)."""
        return ('kernel', )

    def attention_flops(self) -> int:
        """``fc1``, ``fc2`` and, with the non-local basis, ``fc3`` applied to
        each mixture's basis logits, per sample."""
        self._require_finalized()
        attn = self.attention
        total = (
            attn.fc1.in_features * attn.fc1.out_features +
            attn.fc2.in_features * attn.fc2.out_features)
        if attn.num_basis:
            total += (
                attn.num_mixtures * attn.fc3.in_features *
                attn.fc3.out_features)
        return total

    def flops(self, input_shape: Sequence[int]) -> Dict[str, int]:
        """Pooling, attention, kernel assembly (``m * n`` cell multiply-adds
        of ``c_out * c_in * ckh * ckw`` each) and the convolution."""
        self._require_finalized()
        batch, cin, height, width = (int(v) for v in input_shape)
        h_out, w_out = self.output_size(height, width)
        cell_numel = math.prod(self.cell_shape)
        return dict(
            pool=batch * cin * height * width,
            attention=batch * self.attention_flops(),
            aggregation=batch * self.num_mixtures * self.num_kernels *
            cell_numel,
            conv=batch * self.kernel_numel * h_out * w_out)

    @torch.no_grad()
    def init_from_dense(self, weight: Tensor) -> List[nn.Parameter]:
        """Write a dense kernel into the cells this conv's one-hot
        assignment selects.

        Exact only where the one-hot assignment is the whole attention:
        temperature 1 (the start of ImageNet annealing) and
        ``cell_num_ratio >= 1`` (every mixture has a cell of its own).

        Raises:
            ValueError: Another temperature (e.g. detection's fixed 0) or a
                ratio below 1, saying why.
        """
        self._require_finalized()
        expected = (self.out_channels, self.in_channels // self.groups,
                    *self.kernel_size)
        if tuple(weight.shape) != expected:
            raise ValueError(f'{type(self).__name__}: a dense kernel of shape '
                             f'{tuple(weight.shape)} does not fit {expected}')
        reasons = []
        if self.temperature != 1.0:
            reasons.append(
                f'its temperature is {self.temperature:g} (detection keeps 0, '
                'where every mixture blends all cells); build the backbone '
                'with temperature=1 for ImageNet training, or start from a '
                'KernelWarehouse checkpoint')
        if self.warehouse_cell_num_ratio < 1:
            reasons.append(
                f'its cell_num_ratio is {self.warehouse_cell_num_ratio:g} '
                '(below 1, mixtures share cells or take the zero cell)')
        if reasons:
            raise ValueError(
                f'{type(self).__name__}: a dense kernel maps exactly into '
                'the warehouse only where the fixed one-hot assignment is the '
                'whole attention (temperature 1, cell_num_ratio >= 1); ' +
                '; '.join(reasons))
        go, gi, gs = self.groups_out, self.groups_in, self.groups_spatial
        co, ci, ckh, ckw = self.cell_shape
        pieces = weight.reshape(go, co, gi, ci, gs, ckh,
                                ckw).permute(4, 0, 2, 1, 3, 5,
                                             6).reshape(-1, co, ci, ckh, ckw)
        cells = self.cells
        cells[list(self.attention.assignment)] = pieces.to(cells)
        return [cells]

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self._manager:
            s += (f', warehouse={self.warehouse_name!r}, '
                  f'mixtures={self.num_mixtures}, cells={self.num_kernels}')
        return s


class KWLinear(nn.Module):
    """A fully connected KernelWarehouse layer (the release's ``KWLinear``).

    ``[N, C_in] -> [N, C_out]`` through :attr:`conv`, a 1x1
    :class:`KWConv2d` applied to ``[N, C_in, 1, 1]`` (the release applies a
    1-d conv to ``[N, C_in, 1]``: the same numbers, and cells with one
    spatial axis fewer). Arguments after ``bias`` go to :class:`KWConv2d`.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 bias: bool = True,
                 **kwargs) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.conv = KWConv2d(in_features, out_features, 1, bias=bias, **kwargs)

    def init_weights(self) -> None:
        self.conv.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.size(1) != self.in_features:
            raise ValueError(f'KWLinear expects [N, {self.in_features}], got '
                             f'{list(x.shape)}')
        return self.conv(x[:, :, None, None]).flatten(1)
