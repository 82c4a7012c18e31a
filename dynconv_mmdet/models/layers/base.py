"""The protocol of the dynamic convolution layers: :class:`DynamicConv2d`.

A family is one subclass that describes itself
(``docs/adding_a_dynamic_conv.md``). Beside this module: the attentions and
their shared helpers (:mod:`.attention`), the temperature
(:mod:`.temperature`), argument checks (:mod:`.checks`), the forward
machinery (:mod:`.forward`), the inference cache (:mod:`.inference_cache`),
the default FLOPs (:mod:`.flops`), the convolution maths (:mod:`.functional`)
and the completion of convs that share state across a model
(:mod:`.groups`).
"""
import copy
import math
from typing import Any, ClassVar, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor
from torch.nn.modules.utils import _pair

from .attention import DynamicAttention, global_average
from .checks import (IntOrPair, check_conv_channels, check_pair,
                     check_positive_int)
from .flops import FlopsMixin
from .forward import ForwardMixin
from .functional import (EXPORT_FORMS, current_export_form, dynamic_conv2d,
                         eager_inference, tracing_for_export)
from .inference_cache import InferenceCacheMixin


class DynamicConv2d(ForwardMixin, InferenceCacheMixin, FlopsMixin, nn.Module):
    """Base class: a drop-in convolution whose kernel depends on its input.

    Subclasses implement :meth:`compute_attention` (or override
    :meth:`forward`). The layer keeps the attributes that mmcv's
    ``ConvModule`` reads (``in_channels``, ``out_channels``, ``kernel_size``,
    ``stride``, ``padding``, ``dilation``, ``groups``, ``transposed``,
    ``output_padding``) and is deliberately not an ``nn.Conv2d`` subclass, so
    tools that fold BatchNorm into ``nn.Conv2d`` leave it alone.

    **A family describes itself here.** The rest of the package (backbones,
    checkpoint loading, the complexity and benchmark tools, the temperature
    hook) only asks the class, so a family defined in another package works
    everywhere once it is registered in mmengine's root ``MODELS``
    (``docs/adding_a_dynamic_conv.md``). The defaults describe a family that
    mixes ``K`` kernels with a kernel attention and has no temperature:

    * :attr:`temperature_default`, :attr:`temperature_range`,
      :attr:`temperature_schedule`, :attr:`temperature_doc`: whether the
      family has a temperature and what it means (see
      :class:`~.temperature.TemperatureMixin`);
    * :attr:`takes_backbone_norm` / :meth:`backbone_conv_cfg`: whether the
      attention takes the backbone's ``norm_cfg`` (so a SyncBN backbone
      synchronises it);
    * :meth:`produced_attentions`, :meth:`per_kernel_attentions`: which
      attentions :meth:`compute_attention` returns;
    * :meth:`attention_modules`, :meth:`attention_flops`, :meth:`flops`
      (defaults in :class:`~.flops.FlopsMixin`): what the complexity tool
      counts;
    * :meth:`init_from_dense`: initialisation from a dense ImageNet kernel;
    * :meth:`finalize_group` and :meth:`freeze_group`: families whose convs
      share state across a backbone (e.g. KernelWarehouse) complete it there,
      after the backbone has placed all its convs;
    * :meth:`inference_attention` (optional): the attention of an eval-mode
      call without autograd, e.g. from values derived once from the
      parameters with :meth:`inference_cache` (see *Inference path*);
    * :attr:`export_forms` and :meth:`forward_export`: the forms the family
      takes in a graph traced for export (see *Export*).

    Every family exposes its kernel count as :attr:`num_kernels`, whatever
    its constructor calls it. The machinery it inherits (input checks,
    :meth:`convolve`, :meth:`forward_inference`, the inference cache) is in
    :class:`~.forward.ForwardMixin` and
    :class:`~.inference_cache.InferenceCacheMixin`.

    **Inference path.** In eval mode, with autograd off and nothing being
    compiled or traced (:func:`~.functional.eager_inference`), :meth:`forward`
    runs :meth:`forward_inference`: :meth:`inference_attention` and
    :func:`~.functional.dynamic_conv2d_inference`, which give the numbers of
    :meth:`compute_attention` and :func:`~.functional.dynamic_conv2d` with
    fewer operations. :meth:`compute_attention` stays the differentiable
    definition (the benchmark's reference computes the released formulation
    from it); an instance whose ``compute_attention`` was replaced (e.g. by a
    test) always takes the plain path. Values cached by
    :meth:`inference_cache` (:mod:`.inference_cache`) are rebuilt when a
    parameter or buffer they were derived from changes, and dropped by
    ``train()`` / ``eval()``, ``.to()``, ``load_state_dict``, deep copies
    and pickling. Writes through ``param.data`` bypass the version counter
    (mmengine's ``EMAHook`` swaps parameters that way): call
    ``model.eval()`` (as mmengine's validation and test loops do right
    after that swap) or :func:`~.inference_cache.clear_inference_caches`
    after them.

    **Export.** While a graph is traced for export (ONNX with either
    exporter, ``torch.export``, ``torch.jit.trace``:
    :func:`~.functional.tracing_for_export`), :meth:`forward` runs
    :meth:`forward_export` with the exporter's explicit form
    (:func:`~.functional.export_form`, default ``'free'``; never derived
    from the batch size seen while tracing): ``'single'`` for a batch fixed
    at one (one convolution with the sample's kernel), ``'grouped'`` for a
    batch fixed above one (the batch in the groups of one convolution),
    ``'free'`` for a free batch axis. :meth:`forward_export` uses no
    in-place operation and takes the kernel geometry from the module, so
    free height and width stay free. A family declares the forms it
    supports in :attr:`export_forms`; the deployment tools refuse the others
    with the family's name.

    Args:
        in_channels (int): ``C_in``.
        out_channels (int): ``C_out``.
        kernel_size (int | tuple[int, int]): Kernel size.
        stride, padding, dilation (int | tuple[int, int]): As ``nn.Conv2d``.
        groups (int): Convolution groups.
        bias (bool): Add one static per-output-channel bias after the
            dynamic part.
        num_kernels (int, optional): Number of kernels ``K``; the weight has
            shape ``[K, C_out, C_in / groups, kh, kw]``. ``None``: the family
            keeps its kernels elsewhere and creates no ``weight``.
    """

    #: Temperature after annealing, and in detection; ``None``: the family
    #: has no temperature (``set_temperature`` leaves it alone).
    temperature_default: ClassVar[Optional[float]] = None
    #: ``(low, high)`` of valid temperatures.
    temperature_range: ClassVar[Tuple[float, float]] = (0.0, math.inf)
    #: Whether ``low`` itself is a valid temperature.
    temperature_low_inclusive: ClassVar[bool] = False
    #: ImageNet annealing: ``dict(start=..., end=..., epochs=...)``, the
    #: defaults of ``TemperatureAnnealingHook`` for this family.
    temperature_schedule: ClassVar[Optional[Dict[str, float]]] = None
    #: What the temperature does, for messages and docs.
    temperature_doc: ClassVar[str] = ''
    #: Whether a backbone passes its (batch) norm to the attention.
    takes_backbone_norm: ClassVar[bool] = False
    #: The export forms :meth:`forward_export` implements
    #: (:data:`~.functional.EXPORT_FORMS`).
    export_forms: ClassVar[Tuple[str, ...]] = EXPORT_FORMS
    #: The constructor argument that sets :attr:`num_kernels` (each
    #: release's own name, e.g. CondConv's ``num_experts``), for messages
    #: and the generic tests; ``None``: the count is not an argument.
    num_kernels_arg: ClassVar[Optional[str]] = 'num_kernels'
    #: Constructor arguments (besides the geometry) of one small example of
    #: the family that works on its own, which the generic drop-in tests
    #: (:func:`dynconv_mmdet.testing.family_examples`) run for every
    #: registered family; ``None``: the family is only complete inside a
    #: backbone (e.g. KernelWarehouse's shared warehouses) and its own tests
    #: cover it.
    example_kwargs: ClassVar[Optional[Dict[str, Any]]] = None
    #: More named examples (variant -> constructor arguments) for the
    #: generic tests of the inference path, e.g. ODConv's ablations.
    example_variants: ClassVar[Dict[str, Dict[str, Any]]] = {}
    #: Prefixes (relative to the conv) of the entries that a checkpoint of
    #: the family's kernels alone may lack: a release's conversion of a
    #: dense network stores the kernels in the family's own form and leaves
    #: these (e.g. FDConv's attention and band modulation) to the family's
    #: init. The pretrained loader reports them as kept, not missing, once
    #: the conv's kernels were loaded.
    kernels_only_checkpoint_keeps: ClassVar[Tuple[str, ...]] = ()

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrPair,
                 stride: IntOrPair = 1,
                 padding: IntOrPair = 0,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 bias: bool = False,
                 num_kernels: Optional[int] = 1) -> None:
        super().__init__()
        name = type(self).__name__
        check_conv_channels(name, in_channels, out_channels, groups)
        if num_kernels is not None:
            check_positive_int(name, self.num_kernels_arg or 'num_kernels',
                               num_kernels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        for arg, minimum in (('kernel_size', 1), ('stride', 1), ('padding', 0),
                             ('dilation', 1)):
            check_pair(name, arg, getattr(self, arg), minimum)
        self.groups = groups
        self.transposed = False
        self.output_padding = (0, 0)
        if num_kernels is not None:
            self.weight = nn.Parameter(
                torch.empty(num_kernels, out_channels, in_channels // groups,
                            *self.kernel_size))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter('bias', None)

    @property
    def num_kernels(self) -> int:
        """Number of kernels ``K``: every family's kernel count, whatever its
        constructor argument is called (CondConv's ``num_experts``, DyConv's
        and ODConv's ``kernel_num``; KernelWarehouse: the cells ``n``)."""
        return self.weight.size(0)

    @property
    def is_depthwise(self) -> bool:
        """Whether every channel is convolved on its own."""
        return self.groups == self.in_channels == self.out_channels

    @property
    def kernel_numel(self) -> int:
        """Elements of one kernel: ``C_out * C_in / groups * kh * kw``."""
        return (self.out_channels * (self.in_channels // self.groups) *
                self.kernel_size[0] * self.kernel_size[1])

    def init_weights(self) -> None:
        """Kaiming-normal (fan_out, ReLU) init of every kernel, zero bias."""
        for kernel in self.weight.data:
            nn.init.kaiming_normal_(
                kernel, mode='fan_out', nonlinearity='relu')
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def compute_attention(self, x: Tensor) -> DynamicAttention:
        """Attentions for input ``x`` of shape ``[B, C_in, H, W]``.

        Default: :meth:`attention_from_pooled` of the globally averaged
        input. A family whose attention does not start from the pooled
        input overrides this method instead.
        """
        return self.attention_from_pooled(global_average(x))

    def attention_from_pooled(self, pooled: Tensor) -> DynamicAttention:
        """Attentions from the globally averaged input ``[B, C_in]``.

        Families whose attention starts with global average pooling (all of
        CondConv, DyConv and ODConv) implement this instead of
        :meth:`compute_attention`: :meth:`forward` then pools the input
        through the tensor its convolution reads
        (:meth:`~.functional.ConvInput.global_average`), which makes the
        training step cheaper.
        """
        raise NotImplementedError(
            f'{type(self).__name__} implements neither compute_attention '
            'nor attention_from_pooled')

    def forward(self, x: Tensor) -> Tensor:
        """Input ``[B, C_in, H, W]`` -> output ``[B, C_out, H_out, W_out]``.

        Eval mode without autograd, compilation or tracing:
        :meth:`forward_inference` (same numbers, see the class doc); a graph
        traced for export: :meth:`forward_export`.
        """
        self.check_input(x)
        if tracing_for_export():
            return self.forward_export(x, current_export_form())
        plain = 'compute_attention' in self.__dict__
        if not (self.training or plain) and eager_inference():
            return self.forward_inference(x)
        if not plain and (type(self).compute_attention
                          is DynamicConv2d.compute_attention):
            return self._forward_pooled(x)
        return self.convolve(dynamic_conv2d, x, self.compute_attention(x))

    def forward_export(self, x: Tensor, form: str) -> Tensor:
        """:meth:`forward` in a graph traced for export, in the export form
        ``form`` (one of :attr:`export_forms`).

        Default: :meth:`compute_attention` (out-of-place operations only:
        an in-place operation on a view may be lost from a traced graph) and
        :func:`~.functional.dynamic_conv2d` in ``form``, with the kernel
        size of the module.
        """
        return self.convolve(
            dynamic_conv2d,
            x,
            self.compute_attention(x),
            export_form=form,
            kernel_size=self.kernel_size)

    def inference_attention(self, x: Tensor) -> DynamicAttention:
        """The attentions of an eval-mode call without autograd: the numbers
        of :meth:`compute_attention` (default: it), possibly computed from
        values cached with :meth:`inference_cache`."""
        return self.compute_attention(x)

    # ------------------------------------------------------------------
    # What the family is: asked by backbones, loaders and tools
    @classmethod
    def backbone_conv_cfg(cls, conv_cfg: dict,
                          norm_cfg: Optional[dict]) -> dict:
        """The config a backbone builds this conv with.

        With :attr:`takes_backbone_norm`, a ``conv_cfg`` without its own
        ``norm_cfg`` takes the backbone's when that is a batch norm (BN,
        SyncBN, ...), so a SyncBN backbone also synchronises the attention
        statistics. Other norms (e.g. GN, whose group count need not divide
        the attention's width) leave the family's default.

        Args:
            conv_cfg (dict): The layout's ``conv_cfg`` (not modified).
            norm_cfg (dict, optional): The backbone's ``norm_cfg``.
        """
        cfg = copy.deepcopy(conv_cfg)
        if (cls.takes_backbone_norm and 'norm_cfg' not in cfg and norm_cfg
                and 'BN' in norm_cfg['type']):
            cfg['norm_cfg'] = copy.deepcopy(norm_cfg)
        return cfg

    def produced_attentions(self) -> Tuple[str, ...]:
        """The attentions this layer computes (:class:`DynamicAttention`
        field names); the others are the constant 1."""
        return ('kernel', )

    def per_kernel_attentions(self) -> Tuple[str, ...]:
        """The produced attentions that come one per kernel (``[B, K, n]``,
        e.g. ODConv's "unshared" variant) instead of one for all kernels
        (``[B, n]``). Default: none."""
        return ()

    @torch.no_grad()
    def init_from_dense(self, weight: Tensor) -> List[nn.Parameter]:
        """Initialise the kernels from a dense kernel of the same geometry.

        Default: every kernel becomes ``weight``; the attention keeps its own
        initialisation. A family that cannot start from a dense kernel
        raises ``ValueError`` saying why.

        Args:
            weight (Tensor): ``[C_out, C_in / groups, kh, kw]``.

        Returns:
            list[nn.Parameter]: The parameters it wrote (the loader counts
            them as loaded).
        """
        if tuple(weight.shape) != tuple(self.weight.shape[1:]):
            raise ValueError(
                f'{type(self).__name__}: a dense kernel of shape '
                f'{tuple(weight.shape)} does not fit kernels of shape '
                f'{tuple(self.weight.shape[1:])}')
        self.weight.copy_(
            weight.to(self.weight).unsqueeze(0).expand_as(self.weight))
        return [self.weight]

    @classmethod
    def finalize_group(cls, owner: nn.Module,
                       convs: List[Tuple[str, 'DynamicConv2d']]) -> None:
        """Complete the convs of this family once ``owner`` placed them all.

        Called once per family by :func:`~.groups.finalize_dynamic_convs`
        (which the backbones call after placing their convs), with every conv
        of exactly this class inside ``owner``, in module order, named
        relative to ``owner``. A family whose convs share state (a kernel
        warehouse) adds it to ``owner`` here. Default: nothing to do.
        """

    @classmethod
    def freeze_group(cls, owner: nn.Module,
                     convs: List[Tuple[str, 'DynamicConv2d']]) -> None:
        """Freeze the state shared with ``convs``, which ``owner`` has just
        frozen (``frozen_stages``); called by
        :func:`~.groups.freeze_dynamic_convs`.
        Default: nothing is shared, nothing to do."""

    def extra_repr(self) -> str:
        s = (f'{self.in_channels}, {self.out_channels}, '
             f'kernel_size={self.kernel_size}, stride={self.stride}')
        if hasattr(self, 'weight'):
            s += f', num_kernels={self.num_kernels}'
        if self.padding != (0, 0):
            s += f', padding={self.padding}'
        if self.dilation != (1, 1):
            s += f', dilation={self.dilation}'
        if self.groups != 1:
            s += f', groups={self.groups}'
        if self.bias is None:
            s += ', bias=False'
        return s
