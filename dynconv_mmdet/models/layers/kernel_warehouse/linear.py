"""A fully connected KernelWarehouse layer (:class:`KWLinear`)."""
import torch.nn as nn
from torch import Tensor

from .layer import KWConv2d


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
