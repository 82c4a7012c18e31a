"""The KernelWarehouse layers: :class:`KWConv2d` and :class:`KWLinear`
(the package docstring describes where the warehouses live)."""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.registry import MODELS
from torch import Tensor

from ..attention import DynamicAttention
from ..base import DynamicConv2d
from ..checks import IntOrPair
from ..functional import conv2d_per_sample
from ..temperature import TemperatureMixin
from .attention import KWAttention
from .manager import KernelWarehouseManager
from .planner import (PerWarehouse, WarehousePlan, check_warehouse_arguments,
                      finalize_warehouses, per_warehouse_setting)


@MODELS.register_module()
class KWConv2d(TemperatureMixin, DynamicConv2d):
    """KernelWarehouse convolution (Li and Yao, ICML 2024), a drop-in conv.

    ``W_b = assemble_j(sum_i alpha_bji * e_i)``: mixture ``j`` of the kernel
    of sample ``b`` is the attention-weighted sum of the warehouse cells
    ``e_1 .. e_n``; ``y_b = conv(x_b, W_b) + bias``. The cells live in a
    warehouse shared by the convs of a stage (see the package docstring):
    the layer works once :meth:`finalize_group` has run, which a dynamic
    backbone does after placing its convs (otherwise call
    :func:`~dynconv_mmdet.models.layers.groups.finalize_dynamic_convs` on
    the model).

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
            groups, bias: As
            :class:`~dynconv_mmdet.models.layers.base.DynamicConv2d`
            (``bias`` is a zero-initialised static bias, as released).
        reduction (float | sequence): Hidden width ratio of the attention.
            Default: 1/16.
        cell_num_ratio (float | sequence): Cells of the warehouse / mixtures
            of its convs (the paper's ``n`` multiplier: 1/4, 1/2, 1, 2, 4).
        cell_inplane_ratio, cell_outplane_ratio (float | sequence): Cell
            channels / gcd of the warehouse's channels.
        sharing_range (str | sequence[str]): Name prefixes fused into one
            warehouse (:func:`~.planner.fuse_warehouse_name`).
            Default: ``('layer', 'conv')``, one warehouse per stage.
        nonlocal_basis_ratio (float | sequence): ``< 1``: the non-local
            basis of :class:`~.attention.KWAttention`. Default: 1 (off).
        spatial_partition (bool | sequence): 1x1 spatial cells (else whole
            kernels, all of one size per warehouse). Default: True.
        min_channels (int): Minimal hidden width. Default: 16.
        warehouse (str, optional): Name of the warehouse to draw from (used
            verbatim); default: the release's rule (package docstring).
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
    # the cell count comes from the warehouse the backbone shares
    num_kernels_arg = None

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
        check_warehouse_arguments(
            type(self).__name__, reduction, cell_num_ratio, cell_inplane_ratio,
            cell_outplane_ratio, nonlocal_basis_ratio, min_channels,
            spatial_partition, sharing_range, warehouse)
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

    def warehouse_setting(self, arg: str, index: int, names: Sequence[str]):
        """This conv's ``arg`` for warehouse ``index`` of ``names`` (one
        value for all warehouses, or one each)."""
        return per_warehouse_setting(
            type(self).__name__, arg, getattr(self, arg), index, names)

    @classmethod
    def finalize_group(cls, owner: nn.Module,
                       convs: List[Tuple[str, 'KWConv2d']]) -> None:
        """Create the warehouses of ``convs`` and complete each conv: the
        family's group hook, done by the warehouse planner
        (:func:`~.planner.finalize_warehouses`, which documents the order
        and the errors)."""
        finalize_warehouses(owner, convs)

    def attach_warehouse(self, manager: KernelWarehouseManager,
                         plan: WarehousePlan, start: int,
                         assignment: List[int], index: int,
                         names: List[str]) -> None:
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
            reduction=self.warehouse_setting('reduction', index, names),
            min_channels=self.min_channels,
            cell_num_ratio=plan.cell_num_ratio,
            nonlocal_basis_ratio=self.warehouse_setting(
                'nonlocal_basis_ratio', index, names),
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
        return self.forward_export(x, None)

    def forward_export(self, x: Tensor, form: Optional[str]) -> Tensor:
        """:meth:`forward` with the per-sample convolution in the export
        form ``form`` (``None``: eager, or the exporter's form while a graph
        is traced)."""
        self._require_finalized()
        self.check_input(x)
        kernels = self.assemble_kernels(self.kw_attention(x))
        out = conv2d_per_sample(
            x,
            kernels,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            kernel_size=self.kernel_size,
            export_form=form)
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
