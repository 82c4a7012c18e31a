"""Shared computation of dynamic convolutions, one module per operation:
kernel aggregation (:mod:`.aggregation`), the dynamic convolution and its
per-sample convolution (:mod:`.conv`), shapes and the placement of the
channel attentions (:mod:`.geometry`), pointwise convolutions as matrix
products (:mod:`.pointwise`), ``unfold`` for export (:mod:`.unfold`), the
inference form (:mod:`.inference`) and what a call may take
(:mod:`.modes`). The public names are importable from this package.

Every dynamic convolution in this package is an instance of

    y_b = a_out_b * conv(x_b * a_in_b, sum_i a_kernel_bi * a_spatial_b * W_i)

for a sample ``b`` (Li et al., "Omni-Dimensional Dynamic Convolution", ICLR
2022, eq. 3). CondConv (Yang et al., NeurIPS 2019) and DyConv (Chen et al.,
CVPR 2020) only use ``a_kernel``.

The released implementations fold the batch into convolution groups, multiply
the attentions into whole feature maps and materialise a
``[B, K, C_out, C_in, k, k]`` tensor (the benchmark's reference,
:mod:`dynconv_mmdet.analysis.reference`). :func:`dynamic_conv2d` computes the
same result with exact algebraic rewrites:

* the kernel mixture is one matrix product ``[B, K] @ [K, C_out*C_in*k*k]``
  (no ``[B, K, ...]`` intermediate);
* the input- and output-channel attentions are multiplied into the per-sample
  kernel when the kernel is smaller than the feature map they would otherwise
  scale (always the case for the 1x1 convs of a detection backbone), and into
  the feature maps otherwise;
* one image (or one kernel for the whole batch) runs the library
  convolution with its kernel, exactly as a static conv does;
* a pointwise (1x1, unpadded, ungrouped) convolution with per-sample kernels
  is a batched matrix product ``[B, C_out, C_in] @ [B, C_in, H*W]``, which
  needs neither grouped convolutions nor any elementwise pass over the
  feature maps, forward or backward;
* other per-sample kernels fold the batch into the groups of one
  convolution;
* while a graph is traced for export (ONNX, ``torch.export``,
  ``torch.jit.trace``) the exporter's explicit export form decides
  (:func:`export_form`, :data:`EXPORT_FORMS`): one convolution with the
  sample's kernel for a batch fixed at one, the batch folded into the
  groups for a batch fixed above one, and by default, for a free batch
  axis, ``unfold`` and a batched matrix product, so that no batch size is
  baked into the graph; never the batch size seen while tracing;
* when no per-sample kernel remains (one kernel, no spatial attention and the
  channel attentions on the feature maps) the static weight is used;
* the global average pooling of the attention reads the input through the
  same tensor as the convolution (:func:`prepare_conv_input`), so that its
  gradient is added in place into the convolution's input gradient.

Attentions may also come one per kernel, ``[B, K, n]`` (ODConv's "unshared"
variant): they are multiplied into every kernel before the kernels are
summed (:func:`aggregate_kernels`).

Without autograd (``torch.no_grad()`` in eager mode, :func:`eager_inference`)
the layers call :func:`dynamic_conv2d_inference`: the same computation, with
the tensors it creates itself scaled in place and the shapes of one image
handled by plain 4-D views.
"""
from .aggregation import aggregate_kernels, has_per_kernel_attention
from .conv import (ConvInput, conv2d_per_sample, dynamic_conv2d,
                   prepare_conv_input)
from .geometry import conv_output_size, fold_channel_attention
from .inference import dynamic_conv2d_inference
from .modes import (DEFAULT_EXPORT_FORM, EXPORT_FORMS, check_export_form,
                    current_export_form, eager_inference, export_form,
                    tracing_for_export)
from .pointwise import is_pointwise, pointwise_matmul
from .unfold import unfold_conv2d

__all__ = [
    'aggregate_kernels', 'has_per_kernel_attention', 'ConvInput',
    'conv2d_per_sample', 'dynamic_conv2d', 'prepare_conv_input',
    'conv_output_size', 'fold_channel_attention', 'dynamic_conv2d_inference',
    'eager_inference', 'tracing_for_export', 'is_pointwise',
    'pointwise_matmul', 'unfold_conv2d', 'EXPORT_FORMS', 'DEFAULT_EXPORT_FORM',
    'check_export_form', 'current_export_form', 'export_form'
]
