"""Classification heads used by the ImageNet recipes of the ODConv paper.

* :class:`DropoutLinearClsHead`: dropout followed by a linear classifier, the
  head of the ImageNet models trained by Li, Zhou and Yao, "Omni-Dimensional
  Dynamic Convolution", ICLR 2022 (dropout 0.1 / 0.2 before the FC for
  ResNet-18 / ResNet-50 and -101, 0.2 / 0.1 / 0 for MobileNetV2 1.0 / 0.75 /
  0.5).
* :class:`CondConvClsHead`: the same head whose FC is a CondConv layer with
  8 experts, as in Yang et al., "CondConv: Conditionally Parameterized
  Convolutions for Efficient Inference", NeurIPS 2019, which also makes the
  final fully connected layer of its ImageNet models conditionally
  parameterized.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS


@MODELS.register_module()
class DropoutLinearClsHead(ClsHead):
    """Dropout and a linear classifier on the last backbone/neck output.

    Args:
        num_classes (int): Number of categories.
        in_channels (int): Number of input channels (after global pooling).
        dropout_rate (float): Probability of the dropout applied to the
            pooled features before the FC. Defaults to 0.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to ``Normal(std=0.01)`` for the linear layers.
        **kwargs: Other arguments of mmpretrain's ``ClsHead`` (``loss``,
            ``topk``, ``cal_acc``).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 dropout_rate: float = 0.0,
                 init_cfg: Optional[dict] = dict(
                     type='Normal', layer='Linear', std=0.01),
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(
                f'num_classes={num_classes} must be a positive integer')
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f'dropout_rate={dropout_rate} must be in [0, 1)')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.dropout_rate = dropout_rate
        self.dropout = nn.Dropout(p=dropout_rate)
        self.fc = self._build_classifier()

    def _build_classifier(self) -> nn.Module:
        return nn.Linear(self.in_channels, self.num_classes)

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """The pooled features of the last stage (before the dropout)."""
        return feats[-1]

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Classification scores of shape ``[N, num_classes]``."""
        x = self.dropout(self.pre_logits(feats))
        return self.fc(x)


class CondConvLinear(nn.Module):
    """A fully connected CondConv layer (Yang et al., NeurIPS 2019).

    ``y = (sum_i r_i(x) W_i) x + sum_i r_i(x) b_i`` with the routing weights
    ``r(x) = sigmoid(x R + c)`` computed from the layer input (the pooled
    features, so the paper's global average pooling is the identity here).

    Args:
        in_features (int): Input features.
        out_features (int): Output features.
        num_experts (int): Number of expert layers. Defaults to 8.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 num_experts: int = 8) -> None:
        super().__init__()
        if num_experts < 1:
            raise ValueError(
                f'num_experts={num_experts} must be a positive integer')
        self.in_features = in_features
        self.out_features = out_features
        self.num_experts = num_experts
        self.weight = nn.Parameter(
            torch.empty(num_experts, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(num_experts, out_features))
        self.routing = nn.Linear(in_features, num_experts)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise every expert like ``nn.Linear`` does."""
        bound = 1.0 / math.sqrt(self.in_features)
        for i in range(self.num_experts):
            nn.init.kaiming_uniform_(self.weight[i], a=math.sqrt(5))
        nn.init.uniform_(self.bias, -bound, bound)

    def routing_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``sigmoid(x R + c)``, shape ``[N, num_experts]``."""
        return torch.sigmoid(self.routing(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mix the experts per sample and apply them to ``x [N, C_in]``."""
        r = self.routing_weights(x)
        weight = torch.einsum('ne,eoi->noi', r, self.weight)
        bias = r @ self.bias
        return torch.einsum('noi,ni->no', weight, x) + bias

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, '
                f'out_features={self.out_features}, '
                f'num_experts={self.num_experts}')


@MODELS.register_module()
class CondConvClsHead(DropoutLinearClsHead):
    """:class:`DropoutLinearClsHead` with an 8-expert CondConv classifier.

    The CondConv paper makes the final classification layer of its ImageNet
    models a CondConv layer with the same number of experts as the
    convolutions (8 in the comparisons of the ODConv paper). The routing
    function is ``sigmoid`` of a fully connected layer on the (dropped-out)
    pooled features, which are the input of the classifier. ``init_cfg``
    (``Normal``, std 0.01, on ``nn.Linear``) initialises the routing layer;
    the experts keep the ``nn.Linear``-style init of :class:`CondConvLinear`.

    Args:
        num_classes (int): Number of categories.
        in_channels (int): Number of input channels.
        num_experts (int): Number of expert classifiers. Defaults to 8.
        **kwargs: Arguments of :class:`DropoutLinearClsHead`.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 num_experts: int = 8,
                 **kwargs) -> None:
        self.num_experts = num_experts
        super().__init__(
            num_classes=num_classes, in_channels=in_channels, **kwargs)

    def _build_classifier(self) -> nn.Module:
        return CondConvLinear(self.in_channels, self.num_classes,
                              self.num_experts)


__all__ = ['CondConvLinear', 'CondConvClsHead', 'DropoutLinearClsHead']
