"""The KernelWarehouse classifier of KW MobileNetV2 (1/2x).

Li and Yao, "KernelWarehouse: Rethinking the Design of Dynamic Convolution",
ICML 2024: the released MobileNetV2 1/2x (``kw1d2x_mobilenetv2.py``) makes
its classifier a KernelWarehouse linear layer drawing from a warehouse of its
own (``'classifier'``: reduction 1/32, ``cell_num_ratio`` 0.5, input cells of
``0.025 * 1280 = 32`` channels, whole output rows), 0.73M of the model's
2.65M parameters.
"""
from typing import Optional

import torch.nn as nn
from mmpretrain.registry import MODELS

from dynconv_mmdet.models.layers import (KWLinear, finalize_dynamic_convs,
                                         set_temperature)
from .heads import DropoutLinearClsHead

#: The release's classifier warehouse (the last entry of the per-warehouse
#: ratios in ``kw1d2x_mobilenetv2.py``).
KW1D2X_CLASSIFIER = dict(
    warehouse='classifier',
    reduction=1 / 32,
    cell_num_ratio=0.5,
    cell_inplane_ratio=0.025,
    cell_outplane_ratio=1.0)


@MODELS.register_module()
class KWLinearClsHead(DropoutLinearClsHead):
    """Dropout and a KernelWarehouse linear classifier.

    The classifier (:attr:`fc`, a
    :class:`~dynconv_mmdet.models.layers.KWLinear`) draws from a warehouse
    that the head owns (``warehouse_manager``), finalised when the head is
    built; the backbone's warehouses are the backbone's. Its temperature
    follows the model's (``set_temperature`` / the annealing hook reach it
    like the backbone's convs).

    Args:
        num_classes (int): Number of categories.
        in_channels (int): Pooled feature channels.
        kw_cfg (dict): :class:`~dynconv_mmdet.models.layers.KWConv2d`
            arguments of the classifier. Default: the release's
            (:data:`KW1D2X_CLASSIFIER`).
        temperature (float, optional): Initial temperature; ``None``: the
            family's default (0).
        init_cfg (dict, optional): Defaults to ``None``: the KW layer keeps
            its own (the release's) initialisation.
        **kwargs: :class:`DropoutLinearClsHead` arguments (``dropout_rate``,
            ``loss``, ``topk``, ...).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 kw_cfg: dict = KW1D2X_CLASSIFIER,
                 temperature: Optional[float] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        self.kw_cfg = dict(kw_cfg)
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            init_cfg=init_cfg,
            **kwargs)
        finalize_dynamic_convs(self)
        set_temperature(self, temperature)

    def _build_classifier(self) -> nn.Module:
        return KWLinear(self.in_channels, self.num_classes, **self.kw_cfg)


__all__ = ['KW1D2X_CLASSIFIER', 'KWLinearClsHead']
