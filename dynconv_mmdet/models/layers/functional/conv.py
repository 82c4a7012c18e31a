"""The dynamic convolution (:func:`dynamic_conv2d`) and the per-sample
convolution it runs."""
from typing import NamedTuple, Optional, Tuple

import torch.nn.functional as F
from torch import Tensor

from .aggregation import aggregate_kernels, has_per_kernel_attention
from .geometry import fold_channel_attention
from .modes import check_export_form, current_export_form, tracing_for_export
from .pointwise import is_pointwise, pointwise_matmul
from .unfold import unfold_conv2d


def _conv_per_sample(x: Tensor,
                     kernels: Tensor,
                     shared: bool,
                     stride: Tuple[int, int],
                     padding: Tuple[int, int],
                     dilation: Tuple[int, int],
                     groups: int,
                     form: Optional[str],
                     reads: Optional[Tensor] = None,
                     kernel_size: Optional[Tuple[int, int]] = None) -> Tensor:
    """Convolve every sample with its own kernel.

    Eager (``form`` ``None``): one image or one kernel, the library
    convolution; otherwise pointwise kernels use a batched matrix product,
    other kernels one convolution per batch (the batch folded into the
    groups). In a graph traced for export, the export form ``form``
    (:data:`~.modes.EXPORT_FORMS`) decides, never the traced batch size.

    Args:
        x (Tensor): Input ``[B, C_in, H, W]``.
        kernels (Tensor): ``[B, C_out, C_in / groups, kh, kw]``, or
            ``[1, ...]`` with ``shared``.
        shared (bool): ``kernels[0]`` serves every sample (decided by the
            caller, not by a batch size).
        form (str, optional): The export form, ``None`` when not tracing.
        reads (Tensor, optional): The view of ``x`` this function reads,
            made by :func:`prepare_conv_input` (:class:`ConvInput`).
        kernel_size (tuple[int, int], optional): ``(kh, kw)`` of the layer
            (the unfold of the ``'free'`` form needs it as numbers, not as
            traced tensor sizes); default: read from ``kernels``.

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``.
    """
    if shared or form == 'single' or (form is None and x.size(0) == 1):
        return F.conv2d(x, kernels[0], None, stride, padding, dilation, groups)
    if is_pointwise(kernels, padding, groups) and form != 'grouped':
        return pointwise_matmul(x, kernels, stride, reads)
    if form == 'free':
        return unfold_conv2d(x, kernels, stride, padding, dilation, groups,
                             kernel_size)
    batch, in_channels, height, width = x.shape
    out_channels = kernels.size(1)
    if reads is None or reads.dim() != 4 or reads.size(0) != 1:
        reads = x.reshape(1, batch * in_channels, height, width)
    # 'grouped' fixes the batch (ONNX's group is a number): int() makes the
    # traced size a constant on purpose
    out = F.conv2d(reads,
                   kernels.reshape(batch * out_channels, *kernels.shape[2:]),
                   None, stride, padding, dilation, groups * int(batch))
    return out.view(batch, out_channels, out.size(-2), out.size(-1))


def conv2d_per_sample(x: Tensor,
                      kernels: Tensor,
                      stride: Tuple[int, int],
                      padding: Tuple[int, int],
                      dilation: Tuple[int, int],
                      groups: int,
                      kernel_size: Optional[Tuple[int, int]] = None,
                      export_form: Optional[str] = None) -> Tensor:
    """Convolve sample ``b`` of ``x`` with ``kernels[b]``.

    For families that assemble their per-sample kernels themselves (e.g.
    KernelWarehouse): the library convolution for one image, a batched matrix
    product for pointwise kernels, the batch folded into the groups
    otherwise; in a graph traced for export, ``export_form``, by default
    :func:`~.modes.current_export_form` (``'free'`` unless the exporter
    chose another: the batch axis stays free).

    Args:
        x (Tensor): ``[B, C_in, H, W]``.
        kernels (Tensor): ``[B, C_out, C_in / groups, kh, kw]``.
        kernel_size (tuple[int, int], optional): The layer's ``(kh, kw)``:
            pass it, so that an export with free height and width does not
            read it from a traced tensor.
        export_form (str, optional): :data:`~.modes.EXPORT_FORMS`; given,
            it is used whether tracing or not.

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``.
    """
    form = export_form
    if form is not None:
        check_export_form(form)
    elif tracing_for_export():
        form = current_export_form()
    return _conv_per_sample(
        x,
        kernels,
        False,
        stride,
        padding,
        dilation,
        groups,
        form,
        kernel_size=kernel_size)


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
    tracing = tracing_for_export()
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
                   conv_input: Optional[ConvInput] = None,
                   export_form: Optional[str] = None,
                   kernel_size: Optional[Tuple[int, int]] = None) -> Tensor:
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
        export_form (str, optional): The per-sample convolution of a graph
            traced for export (:data:`~.modes.EXPORT_FORMS`); default: the
            form set by :func:`~.modes.export_form` while tracing, eager
            otherwise. Given explicitly, it is used whether tracing or not.
        kernel_size (tuple[int, int], optional): The layer's ``(kh, kw)``
            (geometry from the module, not from traced tensor sizes).

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``.
    """
    batch, in_channels, height, width = x.shape
    out_channels = weight.size(1)
    per_kernel = has_per_kernel_attention(spatial_attn, in_attn, out_attn)
    per_sample = (
        kernel_attn is not None or spatial_attn is not None or per_kernel)
    reads = None
    form = export_form
    if form is not None:
        check_export_form(form)
    elif (conv_input.tracing
          if conv_input is not None else tracing_for_export()):
        form = current_export_form()
    if conv_input is None:
        fold_in, fold_out = fold_channel_attention(x.shape, weight.shape,
                                                   stride, padding, dilation,
                                                   groups, per_sample, in_attn
                                                   is not None, out_attn
                                                   is not None, form == 'free',
                                                   per_kernel)
    else:
        given = (kernel_attn is not None, spatial_attn is not None, in_attn
                 is not None, out_attn is not None)
        if given != conv_input.attentions:
            raise ValueError(
                'dynamic_conv2d: conv_input was prepared for the attentions '
                f'(kernel, spatial, in, out) = {conv_input.attentions}, got '
                f'{given}; prepare it with the attentions that are passed')
        reads = conv_input.reads
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
                           groups, form, reads, kernel_size)
    if out_attn is not None and not fold_out:
        out = out * out_attn.reshape(batch, out_channels, 1, 1).to(out.dtype)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1).to(out.dtype)
    return out
