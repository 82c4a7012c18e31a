"""FDConv's rules and argument checks: which convs the release leaves
dense, and which of its constructor arguments this implementation takes.

Chen et al., "Frequency Dynamic Convolution for Dense Image Prediction",
CVPR 2025 (github Linwei-Chen/FDConv).
"""
from typing import Optional, Sequence, Tuple

from ..checks import check_positive_int
from .ksm_global import GLOBAL_ACTIVATIONS
from .ksm_local import LOCAL_ACTIVATIONS

#: The release's default ``fbm_cfg`` (also its detection configs').
RELEASE_FBM_CFG = dict(
    k_list=(2, 4, 8),
    lowfreq_att=False,
    fs_feat='feat',
    act='sigmoid',
    spatial='conv',
    spatial_group=1,
    spatial_kernel=3,
    init='zero',
    global_selection=False)


def release_rule_reason(in_channels: int, out_channels: int,
                        kernel_size: Tuple[int, int], groups: int,
                        use_fdconv_if_c_gt: int,
                        use_fdconv_if_k_in: Sequence[int]) -> Optional[str]:
    """Why the release leaves a conv dense, or ``None`` (an FDConv).

    Dense: ``min(C_in, C_out) <= use_fdconv_if_c_gt`` or ``kh`` not in
    ``use_fdconv_if_k_in`` (the release's rules), or ``groups > 1`` (the
    release's Fourier weight and local attention assume one group and fail
    on grouped or depthwise convs: we keep them plain), or
    ``min(C_in, C_out) < 2`` (the spectrum's divisor ``min // 2`` would be
    0).
    """
    smallest = min(in_channels, out_channels)
    if smallest <= use_fdconv_if_c_gt:
        return (f'min(in_channels, out_channels) = {smallest} <= '
                f'use_fdconv_if_c_gt = {use_fdconv_if_c_gt}')
    if kernel_size[0] not in tuple(use_fdconv_if_k_in):
        return (f'kernel size {kernel_size[0]} not in use_fdconv_if_k_in = '
                f'{tuple(use_fdconv_if_k_in)}')
    if groups != 1:
        return (f'groups = {groups}: the Fourier weight is defined for '
                'ungrouped convs only')
    if smallest < 2:
        return 'a single channel: the spectrum divisor min(C) // 2 is 0'
    return None


def check_fdconv_arguments(kernel_num: Optional[int], param_ratio: int,
                           param_reduction: float, reduction: float,
                           ksm_local_act: str, ksm_global_act: str,
                           ksm_only_kernel_att: bool,
                           spatial_freq_decompose: bool, convert_param: bool,
                           linear_mode: bool) -> None:
    """Refuse, naming the argument, what the release does not define or
    this implementation does not take (variants the release's configs never
    use: ``param_reduction < 1``, ``spatial_freq_decompose``,
    ``convert_param=False``, ``linear_mode``)."""
    layer = 'FDConv2d'
    if kernel_num is not None:
        check_positive_int(layer, 'kernel_num', kernel_num)
    check_positive_int(layer, 'param_ratio', param_ratio)
    if not 0 < reduction <= 1:
        raise ValueError(f'{layer}: reduction must be in (0, 1], got '
                         f'{reduction}')
    if ksm_local_act not in LOCAL_ACTIVATIONS:
        raise ValueError(f'{layer}: ksm_local_act must be one of '
                         f'{LOCAL_ACTIVATIONS}, got {ksm_local_act!r}')
    if ksm_global_act not in GLOBAL_ACTIVATIONS:
        raise ValueError(f'{layer}: ksm_global_act must be one of '
                         f'{GLOBAL_ACTIVATIONS}, got {ksm_global_act!r}')
    if ksm_global_act == 'softmax' and not ksm_only_kernel_att:
        raise ValueError(
            f"{layer}: ksm_global_act='softmax' applies to the kernel head "
            'only (the release raises NotImplementedError for the others); '
            'use it with ksm_only_kernel_att=True')
    unsupported = dict(
        param_reduction=(param_reduction, 1.0),
        spatial_freq_decompose=(spatial_freq_decompose, False),
        convert_param=(convert_param, True),
        linear_mode=(linear_mode, False))
    for name, (value, default) in unsupported.items():
        if value != default:
            raise ValueError(
                f'{layer}: {name}={value!r} is not supported (only the '
                f"release's default {default!r}, which its configs use)")
