"""The attention of one KernelWarehouse conv (:class:`KWAttention`)."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor

from ..attention import (global_average, init_attention_weights,
                         normalise_pooled)

#: Added to the absolute sum of a mixture's logits (the release's value).
NORMALISATION_EPS = 1e-3


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
