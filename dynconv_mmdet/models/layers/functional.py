"""Shared computation of dynamic convolutions.

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
  convolution; while a graph is traced for export
  (ONNX, ``torch.export``, ``torch.jit.trace``) they use ``unfold`` and a
  batched matrix product instead, so that no batch size is baked into the
  graph;
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
import functools
import warnings
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def _tracing_for_export() -> bool:
    """Whether a graph is being traced for export (batch must stay free)."""
    return (torch.compiler.is_exporting() or torch.jit.is_tracing()
            or torch.onnx.is_in_onnx_export())


def eager_inference() -> bool:
    """Whether the current call records no autograd graph and is neither
    compiled nor traced (``torch.compile``, ``torch.export``, ONNX export,
    ``torch.jit.trace``).

    Then a layer may take its inference path: values it derived from its
    parameters before (folded norms, packed heads) and operations in place
    on the tensors it creates itself. A traced or compiled graph sees the
    plain computation on the parameters.
    """
    return not (torch.is_grad_enabled() or torch.compiler.is_compiling()
                or torch.jit.is_tracing())


def aggregate_kernels(weight: Tensor,
                      kernel_attn: Optional[Tensor] = None,
                      spatial_attn: Optional[Tensor] = None,
                      in_attn: Optional[Tensor] = None,
                      out_attn: Optional[Tensor] = None,
                      groups: int = 1) -> Tensor:
    """Mix the kernels of a dynamic convolution for every sample.

    ``W_b = a_out_b * a_in_b * a_spatial_b * sum_i a_kernel_bi * W_i``
    (ODConv, ICLR 2022, eq. 3), with the kernel mixture computed as one
    matrix product.

    The spatial and channel attentions may also come one per kernel,
    ``[B, K, n]`` (ODConv's "unshared" variant): then
    ``W_b = sum_i a_kernel_bi * a_out_bi * a_in_bi * a_spatial_bi * W_i``,
    accumulated kernel by kernel (:func:`_aggregate_per_kernel`).

    Args:
        weight (Tensor): Kernels, shape ``[K, C_out, C_in / groups, kh, kw]``.
        kernel_attn (Tensor, optional): Kernel weights, shape ``[B, K]``.
            ``None`` requires ``K == 1``.
        spatial_attn (Tensor, optional): Shape ``[B, kh * kw]`` or
            ``[B, K, kh * kw]``.
        in_attn (Tensor, optional): Input-channel attention, ``[B, C_in]`` or
            ``[B, K, C_in]``.
        out_attn (Tensor, optional): Output-channel attention, ``[B, C_out]``
            or ``[B, K, C_out]``.
        groups (int): Convolution groups.

    Returns:
        Tensor: Per-sample kernels ``[B, C_out, C_in / groups, kh, kw]``
        (``B`` is 1 when no attention is given).
    """
    if has_per_kernel_attention(spatial_attn, in_attn, out_attn):
        return _aggregate_per_kernel(weight, kernel_attn, spatial_attn,
                                     in_attn, out_attn, groups)
    num_kernels, out_channels, in_per_group, kh, kw = weight.shape
    if kernel_attn is None:
        if num_kernels != 1:
            raise ValueError('kernel_attn is required when there are '
                             f'{num_kernels} kernels')
        mixed = weight
    else:
        mixed = torch.matmul(kernel_attn, weight.reshape(num_kernels, -1))
        mixed = mixed.view(-1, out_channels, in_per_group, kh, kw)
    out_per_group = out_channels // groups
    # Attentions that scale the input side of the kernel: [B, g, 1, Cin_g, kk]
    in_scale = None
    if in_attn is not None:
        in_scale = in_attn.reshape(-1, groups, 1, in_per_group, 1)
    if spatial_attn is not None:
        spatial = spatial_attn.reshape(-1, 1, 1, 1, kh * kw)
        in_scale = spatial if in_scale is None else in_scale * spatial
    if in_scale is None and out_attn is None:
        return mixed
    mixed = mixed.reshape(-1, groups, out_per_group, in_per_group, kh * kw)
    if in_scale is not None:
        mixed = mixed * in_scale
    if out_attn is not None:
        mixed = mixed * out_attn.reshape(-1, groups, out_per_group, 1, 1)
    return mixed.reshape(-1, out_channels, in_per_group, kh, kw)


def has_per_kernel_attention(*attentions: Optional[Tensor]) -> bool:
    """Whether any of the attentions comes one per kernel (``[B, K, n]``)."""
    for attn in attentions:
        if attn is not None and attn.dim() == 3:
            return True
    return False


def _aggregate_per_kernel(weight: Tensor, kernel_attn: Optional[Tensor],
                          spatial_attn: Optional[Tensor],
                          in_attn: Optional[Tensor],
                          out_attn: Optional[Tensor], groups: int) -> Tensor:
    """:func:`aggregate_kernels` with attentions one per kernel.

    For each kernel ``i``: its output side ``a_kernel_i * a_out_i``
    (``[B, C_out]``) and input side ``a_in_i * a_spatial_i``
    (``[B, C_in, kh * kw]``) scale ``W_i``; the scaled kernels are summed.
    An attention of shape ``[B, n]`` serves every kernel.
    """
    num_kernels, out_channels, in_per_group, kh, kw = weight.shape
    out_per_group = out_channels // groups
    kernels = weight.reshape(num_kernels, groups, out_per_group, in_per_group,
                             kh * kw)

    def of_kernel(attn: Optional[Tensor], i: int) -> Optional[Tensor]:
        if attn is None:
            return None
        return attn[:, i] if attn.dim() == 3 else attn

    mixed = None
    for i in range(num_kernels):
        out_side = of_kernel(out_attn, i)
        if out_side is not None:
            out_side = out_side.reshape(-1, groups, out_per_group, 1, 1)
        if kernel_attn is not None:
            weight_i = kernel_attn[:, i].reshape(-1, 1, 1, 1, 1)
            out_side = weight_i if out_side is None else out_side * weight_i
        in_side = of_kernel(in_attn, i)
        if in_side is not None:
            in_side = in_side.reshape(-1, groups, 1, in_per_group, 1)
        spatial = of_kernel(spatial_attn, i)
        if spatial is not None:
            spatial = spatial.reshape(-1, 1, 1, 1, kh * kw)
            in_side = spatial if in_side is None else in_side * spatial
        term = kernels[i]
        if out_side is not None:
            term = term * out_side
        if in_side is not None:
            term = term * in_side
        mixed = term if mixed is None else mixed + term
    return mixed.reshape(-1, out_channels, in_per_group, kh, kw)


def conv_output_size(size: int, kernel: int, stride: int, padding: int,
                     dilation: int) -> int:
    """Spatial output size of a convolution along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _is_pointwise(weight: Tensor, padding: Tuple[int, int],
                  groups: int) -> bool:
    return (weight.size(-1) == 1 and weight.size(-2) == 1
            and tuple(padding) == (0, 0) and groups == 1)


def _pointwise_matmul(x: Tensor,
                      weight: Tensor,
                      stride: Tuple[int, int],
                      reads: Optional[Tensor] = None) -> Tensor:
    """1x1 convolution as a (batched) matrix product.

    Args:
        x (Tensor): ``[B, C_in, H, W]``, contiguous or channels-last.
        weight (Tensor): ``[n, C_out, C_in, 1, 1]`` with ``n`` 1 (shared)
            or ``B``.
        reads (Tensor, optional): ``x.flatten(2)`` made by
            :func:`prepare_conv_input` (contiguous ``x``, stride 1, ``n = B``).

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``, in the memory format of ``x``.
    """
    if reads is not None and reads.dim() == 3:
        # [B, C_out, C_in] @ [B, C_in, H * W]: bmm's input gradient is a
        # new tensor (matmul's would be a view)
        return torch.bmm(weight.flatten(2), reads).unflatten(2, x.shape[2:])
    if tuple(stride) != (1, 1):
        x = x[:, :, ::stride[0], ::stride[1]]
    kernels = weight.flatten(2)  # [n, C_out, C_in]
    if (not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)):
        # [B, H * W, C_in] @ [n, C_in, C_out] -> [B, H * W, C_out]
        out = torch.matmul(
            x.permute(0, 2, 3, 1).flatten(1, 2), kernels.transpose(1, 2))
        return out.unflatten(1, x.shape[2:]).permute(0, 3, 1, 2)
    out = torch.matmul(kernels, x.flatten(2))  # [B, C_out, H * W]
    return out.unflatten(2, x.shape[2:])


def _unfold_conv2d(x: Tensor, weight: Tensor, stride: Tuple[int, int],
                   padding: Tuple[int, int], dilation: Tuple[int, int],
                   groups: int) -> Tensor:
    """Per-sample convolution as ``unfold`` + batched matrix product.

    Nothing in the computation depends on the batch size, so an exported
    graph keeps a free batch axis. Memory: the unfolded input is
    ``kh * kw`` times the input.

    Args:
        x (Tensor): ``[B, C_in, H, W]``.
        weight (Tensor): ``[n, C_out, C_in / groups, kh, kw]``, ``n`` 1 or B.
    """
    out_channels, in_per_group, kh, kw = weight.shape[1:]
    h_out = conv_output_size(x.size(2), kh, stride[0], padding[0], dilation[0])
    w_out = conv_output_size(x.size(3), kw, stride[1], padding[1], dilation[1])
    cols = F.unfold(x, (kh, kw), dilation, padding, stride)
    cols = cols.unflatten(1, (groups, -1))  # [B, g, C_in_g * kk, L]
    kernels = weight.reshape(-1, groups, out_channels // groups,
                             in_per_group * kh * kw)
    out = torch.matmul(kernels, cols)  # [B, g, C_out_g, L]
    return out.flatten(1, 2).unflatten(2, (h_out, w_out))


def _conv_per_sample(x: Tensor,
                     kernels: Tensor,
                     shared: bool,
                     stride: Tuple[int, int],
                     padding: Tuple[int, int],
                     dilation: Tuple[int, int],
                     groups: int,
                     tracing: bool,
                     reads: Optional[Tensor] = None) -> Tensor:
    """Convolve every sample with its own kernel.

    One image or one kernel: the library convolution. Otherwise pointwise
    kernels use a batched matrix product, other kernels one convolution per
    batch (the batch folded into the groups), or ``unfold`` and a matrix
    product while tracing for export.

    Args:
        x (Tensor): Input ``[B, C_in, H, W]``.
        kernels (Tensor): ``[B, C_out, C_in / groups, kh, kw]``, or
            ``[1, ...]`` with ``shared``.
        shared (bool): ``kernels[0]`` serves every sample (decided by the
            caller, not by a batch size).
        tracing (bool): A graph is traced for export (the batch stays free).
        reads (Tensor, optional): The view of ``x`` this function reads,
            made by :func:`prepare_conv_input` (:class:`ConvInput`).

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``.
    """
    batch, in_channels, height, width = x.shape
    single = shared or (batch == 1 and not tracing)
    if single:
        return F.conv2d(x, kernels[0], None, stride, padding, dilation, groups)
    if _is_pointwise(kernels, padding, groups):
        return _pointwise_matmul(x, kernels, stride, reads)
    if tracing:
        return _unfold_conv2d(x, kernels, stride, padding, dilation, groups)
    out_channels = kernels.size(1)
    if reads is None or reads.dim() != 4 or reads.size(0) != 1:
        reads = x.reshape(1, batch * in_channels, height, width)
    out = F.conv2d(reads,
                   kernels.reshape(batch * out_channels, *kernels.shape[2:]),
                   None, stride, padding, dilation, groups * batch)
    return out.view(batch, out_channels, out.size(-2), out.size(-1))


def conv2d_per_sample(x: Tensor, kernels: Tensor, stride: Tuple[int, int],
                      padding: Tuple[int, int], dilation: Tuple[int, int],
                      groups: int) -> Tensor:
    """Convolve sample ``b`` of ``x`` with ``kernels[b]``.

    For families that assemble their per-sample kernels themselves (e.g.
    KernelWarehouse): the library convolution for one image, a batched matrix
    product for pointwise kernels, the batch folded into the groups
    otherwise, and ``unfold`` + matrix product while a graph is traced for
    export (the batch axis stays free).

    Args:
        x (Tensor): ``[B, C_in, H, W]``.
        kernels (Tensor): ``[B, C_out, C_in / groups, kh, kw]``.

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``.
    """
    return _conv_per_sample(x, kernels, False, stride, padding, dilation,
                            groups, _tracing_for_export())


def fold_channel_attention(x_shape: Tuple[int, int, int, int],
                           weight_shape: Tuple[int, int, int, int, int],
                           stride: Tuple[int, int],
                           padding: Tuple[int, int],
                           dilation: Tuple[int, int],
                           groups: int,
                           per_sample: bool,
                           has_in: bool,
                           has_out: bool,
                           batch_free: bool = False,
                           per_kernel: bool = False) -> Tuple[bool, bool]:
    """Where :func:`dynamic_conv2d` applies the channel attentions.

    Scaling a per-sample kernel costs its number of elements per sample,
    scaling a feature map the map's: the cheaper side is chosen. Without a
    per-sample kernel (one kernel, no spatial attention), folding pays off
    for pointwise convs (a batched matrix product either way) and for a
    single sample (a plain convolution); with ``batch_free`` (tracing for
    export) the batch size is not looked at.

    Args:
        x_shape: ``(B, C_in, H, W)``.
        weight_shape: ``(K, C_out, C_in / groups, kh, kw)``.
        per_sample (bool): A kernel or spatial attention is present.
        has_in, has_out (bool): Input / output channel attention present.
        per_kernel (bool): An attention comes one per kernel: the channel
            attentions differ from kernel to kernel and go into the kernel.

    Returns:
        tuple[bool, bool]: Fold the input / output attention into the kernel.
    """
    if per_kernel:
        return has_in, has_out
    batch, in_channels, height, width = x_shape
    _, out_channels, in_per_group, kh, kw = weight_shape
    kernel_numel = out_channels * in_per_group * kh * kw
    may_fold = (
        per_sample
        or (kh == kw == 1 and padding[0] == padding[1] == 0 and groups == 1)
        or (not batch_free and batch == 1))
    if not may_fold:
        return False, False
    fold_in = has_in and kernel_numel <= in_channels * height * width
    fold_out = False
    if has_out:
        h_out = conv_output_size(height, kh, stride[0], padding[0],
                                 dilation[0])
        w_out = conv_output_size(width, kw, stride[1], padding[1], dilation[1])
        fold_out = kernel_numel <= out_channels * h_out * w_out
    return fold_in, fold_out


class ConvInput(NamedTuple):
    """:func:`dynamic_conv2d`'s decisions for one input, made before the
    attentions exist (:func:`prepare_conv_input`)."""
    #: ``x`` itself, or the view of it the convolution reads: ``x.flatten(2)``
    #: (per-sample 1x1 kernels, a batched matrix product) or
    #: ``x.reshape(1, B * C_in, H, W)`` (the batch folded into the groups).
    reads: Tensor
    #: Whether a kernel, spatial, input- and output-channel attention will be
    #: given.
    attentions: Tuple[bool, bool, bool, bool]
    fold_in: bool
    fold_out: bool
    tracing: bool
    batch: int

    def global_average(self) -> Tensor:
        """Global average pooling of the input, ``[B, C_in]``, computed
        from :attr:`reads`.

        Pooling and convolution then read the input through the same
        tensor, so that autograd adds the pooling's (broadcast) gradient in
        place into the convolution's input gradient, a new tensor there.
        Pooled from ``x`` while the convolution reads a view of it, the two
        gradients meet at ``x`` and their sum is a new tensor of the input's
        size (measured on a 2-core CPU: ~20 of the ~65 ms of a training step
        of one MobileNetV2 1x1 conv at 200x200, batch 2).
        """
        reads = self.reads
        if reads.dim() == 3:  # [B, C_in, H * W]
            return reads.sum(dim=2) * (1.0 / reads.size(2))
        # [B, C_in, H, W] or [1, B * C_in, H, W]
        scale = 1.0 / (reads.size(2) * reads.size(3))
        return (reads.sum(dim=(2, 3)) * scale).view(self.batch, -1)


def prepare_conv_input(x: Tensor,
                       weight_shape: Tuple[int, ...],
                       stride: Tuple[int, int],
                       padding: Tuple[int, int],
                       dilation: Tuple[int, int],
                       groups: int,
                       attentions: Tuple[bool, bool, bool, bool],
                       per_kernel: bool = False) -> ConvInput:
    """Decide how :func:`dynamic_conv2d` will convolve ``x``, before the
    attentions are computed (from the pooled input,
    :meth:`ConvInput.global_average`).

    Args:
        x (Tensor): ``[B, C_in, H, W]``.
        weight_shape: ``(K, C_out, C_in / groups, kh, kw)``.
        attentions: Whether a kernel, spatial, input- and output-channel
            attention will be given.
        per_kernel (bool): Some of them will come one per kernel.

    Returns:
        ConvInput: Pass it to :func:`dynamic_conv2d` (``conv_input``) with
        exactly those attentions.
    """
    has_kernel, has_spatial, has_in, has_out = attentions
    batch, in_channels, height, width = x.shape
    per_sample = has_kernel or has_spatial or per_kernel
    tracing = _tracing_for_export()
    fold_in, fold_out = fold_channel_attention(x.shape, weight_shape, stride,
                                               padding, dilation, groups,
                                               per_sample, has_in, has_out,
                                               tracing, per_kernel)
    reads = x
    per_sample_kernels = per_sample or fold_in or fold_out
    kh, kw = weight_shape[-2:]
    if ((has_in and not fold_in) or not per_sample_kernels or tracing
            or batch == 1):
        pass  # x * a_in, or the library conv on x
    elif kh == kw == 1 and padding[0] == padding[1] == 0 and groups == 1:
        if stride[0] == stride[1] == 1 and x.is_contiguous():
            reads = x.flatten(2)
    else:
        reads = x.reshape(1, batch * in_channels, height, width)
    return ConvInput(reads, (has_kernel, has_spatial, has_in, has_out),
                     fold_in, fold_out, tracing, batch)


def dynamic_conv2d(x: Tensor,
                   weight: Tensor,
                   bias: Optional[Tensor] = None,
                   stride: Tuple[int, int] = (1, 1),
                   padding: Tuple[int, int] = (0, 0),
                   dilation: Tuple[int, int] = (1, 1),
                   groups: int = 1,
                   kernel_attn: Optional[Tensor] = None,
                   spatial_attn: Optional[Tensor] = None,
                   in_attn: Optional[Tensor] = None,
                   out_attn: Optional[Tensor] = None,
                   conv_input: Optional[ConvInput] = None) -> Tensor:
    """Dynamic convolution with per-sample attentions.

    ``y_b = a_out_b * conv(x_b * a_in_b, sum_i a_kernel_bi * a_spatial_b *
    W_i) + bias`` (ODConv, ICLR 2022, eq. 3; CondConv, NeurIPS 2019 and
    DyConv, CVPR 2020 with ``a_kernel`` only), computed as described in the
    module docstring.

    Args:
        x (Tensor): Input ``[B, C_in, H, W]``.
        weight (Tensor): Kernels ``[K, C_out, C_in / groups, kh, kw]``.
        bias (Tensor, optional): Static bias ``[C_out]`` added last.
        kernel_attn, spatial_attn, in_attn, out_attn (Tensor, optional):
            Attentions of shapes ``[B, K]``, ``[B, kh * kw]``, ``[B, C_in]``
            and ``[B, C_out]`` (the last three also ``[B, K, n]``, one per
            kernel); ``None`` means the constant 1.
        conv_input (ConvInput, optional): From :func:`prepare_conv_input` for
            this ``x``, made for exactly the attentions given (else a
            ``ValueError``).

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``.
    """
    batch, in_channels, height, width = x.shape
    out_channels = weight.size(1)
    per_kernel = has_per_kernel_attention(spatial_attn, in_attn, out_attn)
    per_sample = (
        kernel_attn is not None or spatial_attn is not None or per_kernel)
    reads = None
    if conv_input is None:
        tracing = _tracing_for_export()
        fold_in, fold_out = fold_channel_attention(x.shape, weight.shape,
                                                   stride, padding, dilation,
                                                   groups, per_sample, in_attn
                                                   is not None, out_attn
                                                   is not None, tracing,
                                                   per_kernel)
    else:
        given = (kernel_attn is not None, spatial_attn is not None, in_attn
                 is not None, out_attn is not None)
        if given != conv_input.attentions:
            raise ValueError(
                'dynamic_conv2d: conv_input was prepared for the attentions '
                f'(kernel, spatial, in, out) = {conv_input.attentions}, got '
                f'{given}; prepare it with the attentions that are passed')
        reads, tracing = conv_input.reads, conv_input.tracing
        fold_in, fold_out = conv_input.fold_in, conv_input.fold_out
        if per_kernel and (fold_in, fold_out) != (in_attn is not None, out_attn
                                                  is not None):
            raise ValueError(
                'dynamic_conv2d: attentions one per kernel need a conv_input '
                'prepared with per_kernel=True')
    if in_attn is not None and not fold_in:
        x = x * in_attn.reshape(batch, in_channels, 1, 1).to(x.dtype)
        reads = None  # the convolution reads the scaled input
    kernels = aggregate_kernels(
        weight,
        kernel_attn=kernel_attn,
        spatial_attn=spatial_attn,
        in_attn=in_attn if fold_in else None,
        out_attn=out_attn if fold_out else None,
        groups=groups)
    shared = not (per_sample or fold_in or fold_out)
    out = _conv_per_sample(x, kernels, shared, stride, padding, dilation,
                           groups, tracing, reads)
    if out_attn is not None and not fold_out:
        out = out * out_attn.reshape(batch, out_channels, 1, 1).to(out.dtype)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1).to(out.dtype)
    return out


def dynamic_conv2d_inference(x: Tensor,
                             weight: Tensor,
                             bias: Optional[Tensor] = None,
                             stride: Tuple[int, int] = (1, 1),
                             padding: Tuple[int, int] = (0, 0),
                             dilation: Tuple[int, int] = (1, 1),
                             groups: int = 1,
                             kernel_attn: Optional[Tensor] = None,
                             spatial_attn: Optional[Tensor] = None,
                             in_attn: Optional[Tensor] = None,
                             out_attn: Optional[Tensor] = None) -> Tensor:
    """:func:`dynamic_conv2d` for calls that record no autograd graph.

    Same arguments, same result and the same placement of the channel
    attentions (:func:`fold_channel_attention`); for the callers of
    :func:`eager_inference` only (the result of an in-place operation cannot
    be differentiated). For one image with ungrouped or depthwise kernels,
    the kernel is built with 4-D views of the attentions and every factor
    after the first multiplies it in place; the output attention and the bias
    scale the convolution's output in place. Other shapes use
    :func:`dynamic_conv2d`. The inputs are never modified.
    """
    num_kernels, out_channels, in_per_group, kh, kw = weight.shape
    depthwise = in_per_group == 1 and out_channels == groups
    if (x.size(0) != 1 or not (groups == 1 or depthwise)
            or has_per_kernel_attention(spatial_attn, in_attn, out_attn)):
        return dynamic_conv2d(x, weight, bias, stride, padding, dilation,
                              groups, kernel_attn, spatial_attn, in_attn,
                              out_attn)
    in_channels = x.size(1)
    fold_in, fold_out = _fold_decisions(
        x.shape, weight.shape, stride, padding, dilation, groups,
        kernel_attn is not None or spatial_attn is not None, in_attn
        is not None, out_attn is not None)
    fresh = kernel_attn is not None
    if fresh:
        # [1, K] @ [K, C_out * C_in/g * kh * kw]
        kernel = torch.mm(kernel_attn,
                          weight.reshape(num_kernels,
                                         -1)).view(out_channels, in_per_group,
                                                   kh, kw)
    else:
        kernel = weight[0]
    # The input side of the kernel (channels on dim 1 ungrouped, on dim 0
    # depthwise, times the spatial attention: small), then its output side.
    in_side = None
    if fold_in:
        in_side = (
            in_attn.view(1, in_channels, 1, 1)
            if groups == 1 else in_attn.view(in_channels, 1, 1, 1))
    if spatial_attn is not None:
        spatial = spatial_attn.view(1, 1, kh, kw)
        in_side = spatial if in_side is None else in_side * spatial
    if in_side is not None:
        kernel = kernel.mul_(in_side) if fresh else kernel * in_side
        fresh = True
    if fold_out:
        out_side = out_attn.view(out_channels, 1, 1, 1)
        kernel = kernel.mul_(out_side) if fresh else kernel * out_side
    if in_attn is not None and not fold_in:
        x = x * in_attn.view(1, in_channels, 1, 1)
    out = F.conv2d(x, kernel, None, stride, padding, dilation, groups)
    if out_attn is not None and not fold_out:
        out.mul_(out_attn.view(1, out_channels, 1, 1))
    if bias is not None:
        out.add_(bias.view(1, out_channels, 1, 1))
    return out


@functools.lru_cache(maxsize=4096)
def _cached_fold_decisions(*args) -> Tuple[bool, bool]:
    return fold_channel_attention(*args)


def _fold_decisions(*args) -> Tuple[bool, bool]:
    """:func:`fold_channel_attention` (for one image), memoised: the
    decisions depend on shapes only, and an inference call should not
    recompute them."""
    try:
        return _cached_fold_decisions(*args)
    except TypeError:  # unhashable arguments (e.g. lists)
        return fold_channel_attention(*args)


def batch_folded_conv2d(*args, **kwargs) -> Tensor:
    """Deprecated: moved to
    :func:`dynconv_mmdet.analysis.reference.batch_folded_conv2d`."""
    warnings.warn(
        'dynconv_mmdet.models.layers.functional.batch_folded_conv2d moved '
        'to dynconv_mmdet.analysis.reference.batch_folded_conv2d (the '
        'released formulation is the benchmark\'s reference, not part of '
        'the layers)',
        DeprecationWarning,
        stacklevel=2)
    from ...analysis.reference import batch_folded_conv2d as reference
    return reference(*args, **kwargs)
