"""The warehouses of one model (:class:`KernelWarehouseManager`)."""
from typing import List, Tuple

import torch
import torch.nn as nn
from torch import Tensor


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
