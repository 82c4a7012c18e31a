"""Frequency dynamic convolution (FDConv): :class:`FDConv2d`.

Chen et al., "Frequency Dynamic Convolution for Dense Image Prediction",
CVPR 2025 (github Linwei-Chen/FDConv, MIT). With the default arguments,
numerically the released ``FDConv`` module, with its constructor arguments
and parameter names, so that its checkpoints (and those its
``tools/convert_to_fdconv.py`` writes) load unchanged. The parts: the
Fourier disjoint weight (:mod:`.frequency`), the kernel spatial modulation
(:mod:`.ksm_global`, :mod:`.ksm_local`), the frequency band modulation
(:mod:`.fbm`), the release's rules and argument checks (:mod:`.rules`).
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from ..attention import DynamicAttention
from ..base import DynamicConv2d
from ..checks import IntOrPair
from ..functional import (conv2d_per_sample, current_export_form,
                          tracing_for_export)
from .cost import FDConvCostMixin
from .export import FDConvExportMixin
from .fbm import FrequencyBandModulation
from .frequency import (autocast_off, dense_to_spectrum, frequency_groups,
                        scaled_spectrum, spectrum_scale, spectrum_shape,
                        spectrum_to_kernels)
from .ksm_global import KernelSpatialModulationGlobal
from .ksm_local import KernelSpatialModulationLocal
from .rules import RELEASE_FBM_CFG, check_fdconv_arguments, release_rule_reason


@MODELS.register_module()
class FDConv2d(FDConvExportMixin, FDConvCostMixin, DynamicConv2d):
    """Frequency dynamic convolution, a drop-in conv layer.

    The kernel of sample ``b`` is ``W_b = irfft2(alpha * sum_i a_bi(g) *
    S_i) * L_b * s_b * c_b * f_b``: the stored spectrum ``S``
    (``dft_weight``, ``[P, C_out * kh, C_in * kw // 2 + 1, 2]``) with each
    of ``kernel_num`` disjoint radial frequency groups ``g`` scaled by its
    kernel attention, back in the kernel domain (``alpha = min(C_in, C_out)
    // 2 * kernel_num * P``), times the local attention ``L_b`` (one value
    per kernel element) and the global spatial, input-channel and
    output-channel attentions. On 3x3 convs (``use_fbm_if_k_in``) the input
    first goes through the frequency band modulation. ``y_b = conv(FBM(x_b),
    W_b)`` (+ bias).

    **Dense convs.** As in the release, a conv with ``min(C_in, C_out) <=
    use_fdconv_if_c_gt`` or a kernel size not in ``use_fdconv_if_k_in`` is a
    plain convolution (parameter ``weight`` ``[C_out, C_in / g, kh, kw]``,
    the release's key). Grouped and depthwise convs are dense too: the
    release's Fourier weight assumes ``groups == 1`` (it fails on them);
    :meth:`dense_reason` says why a geometry is dense. ``use_fdconv_if_
    stride_in`` is stored but, as in the release, never checked: stride-2
    convs are FDConv too.

    **What differs from the release, without changing its numbers.** One
    image per batch trains (the attention BatchNorm uses its running
    statistics for a batch of one, as ODConv's); widths whose frequency
    count ``kernel_num`` does not divide get groups of nearly equal size
    (the first ``n % kernel_num`` one coordinate larger; the release fails),
    and a ``kernel_num`` above the count is refused naming the largest valid
    value; an odd ``C_in * kw`` works (``irfft2`` is given the size);
    ``kernel_num=1`` (with ``param_ratio=1``) works, with one kernel for the
    whole batch; the FFTs run in float32 under autocast. Per-sample kernels
    are built without the release's zero-filled spectrum, scatter and
    stacked copies, and convolved as the other families do
    (:func:`~dynconv_mmdet.models.layers.functional.conv2d_per_sample`: the
    library convolution for one image or a shared kernel, a batched matrix
    product for 1x1 kernels).

    **Initialisation.** As released: heads near zero but ``filter_fc``
    Kaiming (``neutral_filter_init=True``: near zero too, the start the
    release intended); a random dense kernel (``nn.Conv2d``'s init) stored
    as its spectrum. :meth:`init_from_dense` is the release's conversion.

    **Export.** The release's ``view_as_complex`` has no ONNX form and
    ONNX's ``DFT`` starts at opset 17: in a traced graph every transform is
    a real DFT product (:mod:`.export`), the FBM's built from the runtime
    height and width; every export form (:attr:`export_forms`).

    **Frozen stages.** As the release's backbone (``need_grad_list=['KSM',
    'FBM']``), a frozen stage keeps the attention (``KSM_Global``,
    ``KSM_Local``, its norms included) and ``FBM`` trainable while the
    spectrum is frozen (:meth:`freeze_group`); ``freeze_attention=True``
    freezes them with the kernel.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
            groups, bias: As ``nn.Conv2d``.
        reduction (float): KSM trunk width ratio. Default: 1/16.
        kernel_num (int, optional): Frequency groups ``K`` (the layer's
            ``num_kernels``; 64 in the released configs). ``None``:
            ``C_out // 2`` with ``kernel_temp = sqrt(K * P)``, as released.
        use_fdconv_if_c_gt (int): Dense unless ``min(C_in, C_out)`` exceeds
            it. Default: 16.
        use_fdconv_if_k_in, use_fbm_if_k_in (Sequence[int]): Kernel sizes
            made FDConv, and given FBM.
        use_fdconv_if_stride_in (Sequence[int]): Stored, never checked.
        use_fbm_for_stride (bool): FBM on every strided conv too.
        kernel_temp (float): Divides the kernel logits. Default: 1.
        temp (float, optional): Divides the other global logits; ``None``:
            ``kernel_temp``.
        att_multi (float): Scale of the sigmoid attentions. Default: 2.
        param_ratio (int): Spectrum copies ``P``. Default: 1.
        param_reduction (float): Only 1 (the release's default).
        ksm_only_kernel_att (bool): Only the kernel head.
        att_grid (int): Stored, unused (as released).
        use_ksm_local (bool): The local branch. Default: True.
        ksm_local_act, ksm_global_act (str): Activations (sigmoid).
        spatial_freq_decompose, convert_param, linear_mode: Only their
            defaults (False, True, False) are supported.
        fbm_cfg (dict): :class:`FrequencyBandModulation` arguments.
        norm_cfg (dict): The KSM trunk norm (BN as released; a backbone
            passes its own, e.g. SyncBN).
        neutral_filter_init (bool): See *Initialisation*.
        freeze_attention (bool): See *Frozen stages*.

    Shapes: input ``[B, C_in, H, W]``, output ``[B, C_out, H', W']``.
    """

    num_kernels_arg = 'kernel_num'
    example_kwargs = dict(kernel_num=4, use_fdconv_if_c_gt=0)
    # the release's convert_to_fdconv.py writes dft_weight alone
    kernels_only_checkpoint_keeps = ('KSM_Global.', 'KSM_Local.', 'FBM.')
    takes_backbone_norm = True

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrPair,
                 stride: IntOrPair = 1,
                 padding: IntOrPair = 0,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 bias: bool = False,
                 reduction: float = 0.0625,
                 kernel_num: Optional[int] = 4,
                 use_fdconv_if_c_gt: int = 16,
                 use_fdconv_if_k_in: Sequence[int] = (1, 3),
                 use_fdconv_if_stride_in: Sequence[int] = (1, ),
                 use_fbm_if_k_in: Sequence[int] = (3, ),
                 use_fbm_for_stride: bool = False,
                 kernel_temp: float = 1.0,
                 temp: Optional[float] = None,
                 att_multi: float = 2.0,
                 param_ratio: int = 1,
                 param_reduction: float = 1.0,
                 ksm_only_kernel_att: bool = False,
                 att_grid: int = 1,
                 use_ksm_local: bool = True,
                 ksm_local_act: str = 'sigmoid',
                 ksm_global_act: str = 'sigmoid',
                 spatial_freq_decompose: bool = False,
                 convert_param: bool = True,
                 linear_mode: bool = False,
                 fbm_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 neutral_filter_init: bool = False,
                 freeze_attention: bool = False) -> None:
        check_fdconv_arguments(
            kernel_num=kernel_num,
            param_ratio=param_ratio,
            param_reduction=param_reduction,
            reduction=reduction,
            ksm_local_act=ksm_local_act,
            ksm_global_act=ksm_global_act,
            ksm_only_kernel_att=ksm_only_kernel_att,
            spatial_freq_decompose=spatial_freq_decompose,
            convert_param=convert_param,
            linear_mode=linear_mode)
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, None)
        if kernel_num is None:
            kernel_num = out_channels // 2
            kernel_temp = math.sqrt(kernel_num * param_ratio)
        if temp is None:
            temp = kernel_temp
        self.use_fdconv_if_c_gt = use_fdconv_if_c_gt
        self.use_fdconv_if_k_in = tuple(use_fdconv_if_k_in)
        self.use_fdconv_if_stride_in = tuple(use_fdconv_if_stride_in)
        self.use_fbm_if_k_in = tuple(use_fbm_if_k_in)
        self.param_ratio = param_ratio
        self.att_multi = att_multi
        self.att_grid = att_grid
        self.use_ksm_local = use_ksm_local
        self.neutral_filter_init = neutral_filter_init
        self.freeze_attention = freeze_attention
        self._kernel_num = kernel_num
        self.dense_reason = release_rule_reason(self.in_channels,
                                                self.out_channels,
                                                self.kernel_size, self.groups,
                                                use_fdconv_if_c_gt,
                                                self.use_fdconv_if_k_in)
        if self.dense_reason is not None:
            self.weight = nn.Parameter(
                torch.empty(out_channels, in_channels // groups,
                            *self.kernel_size))
            self.init_weights()
            return
        rows, cols, half = spectrum_shape(out_channels, in_channels,
                                          self.kernel_size)
        try:
            groups_of = frequency_groups(rows, cols, kernel_num)
        except ValueError as err:
            raise ValueError(f'FDConv2d({in_channels}, {out_channels}, '
                             f'{self.kernel_size}): {err}') from None
        self.register_buffer('group_index', groups_of, persistent=False)
        self.alpha = (
            spectrum_scale(in_channels, out_channels) * kernel_num *
            param_ratio / param_reduction)
        self.dft_weight = nn.Parameter(torch.empty(param_ratio, rows, half, 2))
        self.KSM_Global = KernelSpatialModulationGlobal(
            in_channels,
            out_channels,
            self.kernel_size,
            groups=groups,
            reduction=reduction,
            kernel_num=kernel_num * param_ratio,
            temp=temp,
            kernel_temp=kernel_temp,
            att_multi=att_multi,
            ksm_only_kernel_att=ksm_only_kernel_att,
            act_type=ksm_global_act,
            norm_cfg=norm_cfg,
            neutral_filter_init=neutral_filter_init)
        if self.kernel_size[0] in self.use_fbm_if_k_in or (
                use_fbm_for_stride and self.stride[0] > 1):
            cfg = dict(RELEASE_FBM_CFG if fbm_cfg is None else fbm_cfg)
            self.FBM = FrequencyBandModulation(in_channels, **cfg)
        if use_ksm_local:
            self.KSM_Local = KernelSpatialModulationLocal(
                in_channels,
                out_channels,
                self.kernel_size,
                att_multi=att_multi,
                act=ksm_local_act)
        self.init_weights()

    # ------------------------------------------------------------------
    @property
    def is_dense(self) -> bool:
        """Whether the release's rules leave this conv a plain one
        (:attr:`dense_reason` says why)."""
        return self.dense_reason is not None

    @property
    def num_kernels(self) -> int:
        """``kernel_num``, the frequency groups (1 for a dense conv)."""
        return 1 if self.is_dense else self._kernel_num

    def attention_parts(self) -> List[nn.Module]:
        """``KSM_Global``, ``KSM_Local`` and ``FBM`` (those present)."""
        return [
            getattr(self, name) for name in ('KSM_Global', 'KSM_Local', 'FBM')
            if hasattr(self, name)
        ]

    def init_weights(self) -> None:
        """A random dense kernel as ``nn.Conv2d`` draws it (stored as its
        spectrum unless dense), zero bias, the attention as released."""
        shape = (self.out_channels, self.in_channels // self.groups,
                 *self.kernel_size)
        if self.is_dense:
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        elif self.dft_weight.device.type != 'meta':
            dense = torch.empty(shape, device=self.dft_weight.device)
            nn.init.kaiming_uniform_(dense, a=math.sqrt(5))
            self.init_from_dense(dense)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        for part in self.attention_parts():
            part.init_weights()

    # ------------------------------------------------------------------
    def spectral_kernels(self, kernel_att: Optional[Tensor]) -> Tensor:
        """The kernels from the spectrum scaled by the kernel attention.

        Args:
            kernel_att (Tensor, optional): ``[B, P * K]``; ``None``: one
                group (the attention is 1).

        Returns:
            Tensor: ``[B, C_out, C_in, kh, kw]`` (``[1, ...]`` without
            ``kernel_att``), float32 at least.
        """
        with autocast_off(self.dft_weight.device):
            spectrum = scaled_spectrum(self.dft_weight, self.alpha,
                                       self.group_index, kernel_att)
            return spectrum_to_kernels(spectrum, self.out_channels,
                                       self.in_channels, self.kernel_size)

    def compute_attention(self, x: Tensor) -> DynamicAttention:
        """The global attentions of input ``[B, C_in, H, W]`` (the local
        one is ``KSM_Local``'s)."""
        att = self.KSM_Global(x.mean((2, 3)))
        return DynamicAttention(att.kernel, att.spatial, att.channel,
                                att.filter)

    def forward(self, x: Tensor) -> Tensor:
        """Input ``[B, C_in, H, W]`` -> output ``[B, C_out, H', W']``."""
        self.check_input(x)
        if tracing_for_export():  # real DFT products (.export)
            return self.forward_export(x, current_export_form())
        if self.is_dense:
            return F.conv2d(x, self.weight, self.bias, self.stride,
                            self.padding, self.dilation, self.groups)
        batch, cin, height, width = x.shape
        pooled = x.mean((2, 3))
        att = self.KSM_Global(pooled)
        kernels = self.spectral_kernels(att.kernel)
        if hasattr(self, 'FBM'):
            x = self.FBM(x)
        # the release's choice: the channel attentions in the kernel when
        # it is smaller than the maps they would scale
        in_kernel = self.kernel_numel < (cin + self.out_channels) * \
            height * width
        kernels = self.modulate_kernels(kernels, att, pooled, in_kernel)
        if not in_kernel and att.channel is not None:
            x = x * att.channel.view(batch, cin, 1, 1).to(x.dtype)
        if kernels.size(0) == 1 and batch > 1:
            out = F.conv2d(x, kernels[0], None, self.stride, self.padding,
                           self.dilation, self.groups)
        else:
            out = conv2d_per_sample(x, kernels, self.stride, self.padding,
                                    self.dilation, self.groups)
        if not in_kernel and att.filter is not None:
            out = out * att.filter.view(batch, -1, 1, 1).to(out.dtype)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1).to(out.dtype)
        return out

    # ------------------------------------------------------------------
    # What the family is
    def produced_attentions(self) -> Tuple[str, ...]:
        """The global attentions this conv computes (none when dense); the
        local one and FBM are beside them."""
        if self.is_dense:
            return ()
        ksm = self.KSM_Global
        names = (('kernel', ksm.kernel_fc), ('spatial', ksm.spatial_fc),
                 ('in_channel', ksm.channel_fc), ('out_channel',
                                                  ksm.filter_fc))
        return tuple(name for name, head in names if head is not None)

    @torch.no_grad()
    def init_from_dense(self, weight: Tensor) -> List[nn.Parameter]:
        """Start from a dense kernel ``[C_out, C_in / groups, kh, kw]``: the
        release's conversion (``tools/convert_to_fdconv.py``: ``rfft2`` of
        the ``[C_out * kh, C_in * kw]`` layout divided by ``min(C_in, C_out)
        // 2``, into every copy), so that :meth:`spectral_kernels` gives the
        dense kernel back for the neutral kernel attention; a dense conv
        copies it. The attention keeps its own init.

        Raises:
            ValueError: A kernel of another shape.
        """
        expected = (self.out_channels, self.in_channels // self.groups,
                    *self.kernel_size)
        if tuple(weight.shape) != expected:
            raise ValueError(f'FDConv2d: a dense kernel of shape '
                             f'{tuple(weight.shape)} does not fit {expected}')
        if self.is_dense:
            self.weight.copy_(weight)
            return [self.weight]
        target = self.dft_weight
        spectrum = dense_to_spectrum(
            weight.to(device=target.device, dtype=target.dtype),
            self.param_ratio)
        target.copy_(spectrum)
        return [target]

    @classmethod
    def freeze_group(cls, owner: nn.Module,
                     convs: List[Tuple[str, DynamicConv2d]]) -> None:
        """The release's frozen stages: the kernel (spectrum) and bias stay
        frozen, the attention and FBM of every conv (unless built with
        ``freeze_attention=True``) train again (the backbone keeps the
        stage in eval mode, so the attention BatchNorm uses its running
        statistics while its scale and shift train)."""
        for _, conv in convs:
            if conv.freeze_attention:
                continue
            for part in conv.attention_parts():
                for param in part.parameters():
                    param.requires_grad_(True)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.is_dense:
            return s + f', dense ({self.dense_reason})'
        return s + f', num_kernels={self.num_kernels}' + (
            f', param_ratio={self.param_ratio}'
            if self.param_ratio != 1 else '')
