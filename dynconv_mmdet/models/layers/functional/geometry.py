"""Shapes, and where the channel attentions go (kernel or feature map)."""
from typing import Tuple


def conv_output_size(size: int, kernel: int, stride: int, padding: int,
                     dilation: int) -> int:
    """Spatial output size of a convolution along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


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
    """Where :func:`~.conv.dynamic_conv2d` applies the channel attentions.

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
