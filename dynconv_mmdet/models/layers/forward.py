"""How a kernel-mixing dynamic conv runs: the machinery behind
:meth:`~.base.DynamicConv2d.forward`: input checks, the convolution with a
layer's attentions, the pooled training path and the inference form."""
from typing import Callable

from torch import Tensor

from .attention import ATTENTION_FIELDS, DynamicAttention
from .functional import (dynamic_conv2d, dynamic_conv2d_inference,
                         prepare_conv_input)


class ForwardMixin:
    """:meth:`check_input`, :meth:`convolve`, the pooled training path and
    :meth:`forward_inference` of :class:`~.base.DynamicConv2d`."""

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error for an input this layer cannot take."""
        if not isinstance(x, Tensor):
            raise TypeError(f'{type(self).__name__} expects a Tensor, got '
                            f'{type(x).__name__}')
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects an input of shape '
                f'[N, {self.in_channels}, H, W], got {list(x.shape)}')

    def convolve(self, conv: Callable[..., Tensor], x: Tensor,
                 attn: DynamicAttention, **kwargs) -> Tensor:
        """``conv(x, weight, bias, stride, padding, dilation, groups,
        kernel_attn=..., spatial_attn=..., in_attn=..., out_attn=...,
        **kwargs)`` with this layer's kernels, geometry and the attentions
        ``attn``: :func:`~.functional.dynamic_conv2d`, its inference form,
        or a reference formulation."""
        return conv(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            kernel_attn=attn.kernel,
            spatial_attn=attn.spatial,
            in_attn=attn.in_channel,
            out_attn=attn.out_channel,
            **kwargs)

    def _forward_pooled(self, x: Tensor) -> Tensor:
        """:meth:`forward` of a family that implements
        :meth:`attention_from_pooled`: the input is pooled through the tensor
        the convolution reads (:func:`~.functional.prepare_conv_input`)."""
        produced = set(self.produced_attentions())
        fields = ATTENTION_FIELDS
        if not produced:
            return dynamic_conv2d(x, self.weight, self.bias, self.stride,
                                  self.padding, self.dilation, self.groups)
        conv_input = prepare_conv_input(
            x, self.weight.shape, self.stride, self.padding, self.dilation,
            self.groups, tuple(name in produced for name in fields),
            bool(self.per_kernel_attentions()))
        attn = self.attention_from_pooled(conv_input.global_average())
        given = tuple(getattr(attn, name) is not None for name in fields)
        if given != conv_input.attentions:
            raise RuntimeError(
                f'{type(self).__name__}: produced_attentions() declares '
                f'{sorted(produced)}, attention_from_pooled returned '
                f'{[n for n, g in zip(fields, given) if g]}; make the '
                'two agree')
        return self.convolve(dynamic_conv2d, x, attn, conv_input=conv_input)

    def forward_inference(self, x: Tensor) -> Tensor:
        """:meth:`forward` for an eval-mode call without autograd.

        :meth:`inference_attention`, then
        :func:`~.functional.dynamic_conv2d_inference`. Called by
        :meth:`forward` only when :func:`~.functional.eager_inference`
        holds; a family that overrides :meth:`forward` ignores it.
        """
        return self.convolve(dynamic_conv2d_inference, x,
                             self.inference_attention(x))
