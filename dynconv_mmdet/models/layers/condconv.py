"""Conditionally parameterised convolution (CondConv).

Yang, Bender, Le, Ngiam. "CondConv: Conditionally Parameterized Convolutions
for Efficient Inference", NeurIPS 2019 (arXiv 1904.04971).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from .base import DynamicAttention, DynamicConv2d
from .checks import IntOrPair, check_positive_int


@MODELS.register_module()
class CondConv2d(DynamicConv2d):
    """CondConv: ``kernel = sum_i r_i(x) W_i``, ``r = sigmoid(FC(GAP(x)))``.

    The routing weights are independent sigmoids (not a softmax), one per
    expert, computed by a fully connected layer ``routing`` (``C_in -> E``,
    with bias) on the globally pooled input of this layer.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
            groups, bias: As :class:`DynamicConv2d`.
        num_experts (int): Number of experts ``E`` (the layer's
            ``num_kernels``). Default: 8.

    Shapes: input ``[B, C_in, H, W]``, weight
    ``[E, C_out, C_in / groups, kh, kw]``, output ``[B, C_out, H', W']``.
    """

    num_kernels_arg = 'num_experts'
    example_kwargs = dict(num_experts=3)

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrPair,
                 stride: IntOrPair = 1,
                 padding: IntOrPair = 0,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 bias: bool = False,
                 num_experts: int = 8) -> None:
        check_positive_int('CondConv2d', 'num_experts', num_experts)
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, num_experts)
        self.routing = nn.Linear(in_channels, num_experts)
        self.init_weights()

    def init_weights(self) -> None:
        """Kaiming-normal experts; default ``nn.Linear`` routing init."""
        super().init_weights()
        self.routing.reset_parameters()

    def attention_from_pooled(self, pooled: Tensor) -> DynamicAttention:
        """Routing weights ``sigmoid(routing(pooled))``, ``[B, E]``."""
        return DynamicAttention(kernel=torch.sigmoid(self.routing(pooled)))

    def inference_attention(self, x: Tensor) -> DynamicAttention:
        """The routing weights without autograd (sigmoid in place)."""
        routing = self.routing
        logits = F.linear(x.mean((2, 3)), routing.weight, routing.bias)
        return DynamicAttention(kernel=logits.sigmoid_())
