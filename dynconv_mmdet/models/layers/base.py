"""Common base of the dynamic convolution layers."""
import copy
import math
import numbers
import operator
from typing import (Any, Callable, ClassVar, Dict, Hashable, Iterable, List,
                    NamedTuple, Optional, Sequence, Tuple, Union)

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.utils import _pair

from .functional import (conv_output_size, dynamic_conv2d,
                         dynamic_conv2d_inference, eager_inference,
                         fold_channel_attention, prepare_conv_input)

IntOrPair = Union[int, Tuple[int, int]]


class DynamicAttention(NamedTuple):
    """Attentions of one forward pass; ``None`` stands for the constant 1.

    Shapes: ``kernel`` ``[B, K]``, ``spatial`` ``[B, kh * kw]``,
    ``in_channel`` ``[B, C_in]``, ``out_channel`` ``[B, C_out]``; the last
    three ``[B, K, n]`` when they come one per kernel
    (:meth:`DynamicConv2d.per_kernel_attentions`).
    """
    kernel: Optional[Tensor] = None
    spatial: Optional[Tensor] = None
    in_channel: Optional[Tensor] = None
    out_channel: Optional[Tensor] = None


#: :class:`DynamicAttention` fields in the order of
#: :attr:`~.functional.ConvInput.attentions`.
_ATTENTIONS = ('kernel', 'spatial', 'in_channel', 'out_channel')


def _check_positive_int(layer: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{layer}: {name} must be a positive integer, '
                         f'got {value!r}')


def _check_pair(layer: str, name: str, value: Tuple[int, int],
                minimum: int) -> None:
    if any(
            isinstance(v, bool) or not isinstance(v, int) or v < minimum
            for v in value):
        raise ValueError(f'{layer}: {name} must be integers >= {minimum}, '
                         f'got {value!r}')


class DynamicConv2d(nn.Module):
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
      :class:`TemperatureMixin`);
    * :attr:`takes_backbone_norm` / :meth:`backbone_conv_cfg`: whether the
      attention takes the backbone's ``norm_cfg`` (so a SyncBN backbone
      synchronises it);
    * :meth:`produced_attentions`, :meth:`attention_flops`, :meth:`flops`:
      what the complexity tool counts;
    * :meth:`init_from_dense`: initialisation from a dense ImageNet kernel;
    * :meth:`finalize_group` and :meth:`freeze_group`: families whose convs
      share state across a backbone (e.g. KernelWarehouse) complete it there,
      after the backbone has placed all its convs;
    * :meth:`inference_attention` (optional): the attention of an eval-mode
      call without autograd, e.g. from values derived once from the
      parameters with :meth:`inference_cache` (see *Inference path*).

    **Inference path.** In eval mode, with autograd off and nothing being
    compiled or traced (:func:`~.functional.eager_inference`), :meth:`forward`
    runs :meth:`forward_inference`: :meth:`inference_attention` and
    :func:`~.functional.dynamic_conv2d_inference`, which give the numbers of
    :meth:`compute_attention` and :func:`~.functional.dynamic_conv2d` with
    fewer operations. :meth:`compute_attention` stays the differentiable
    definition (the benchmark's reference computes the released formulation
    from it); an instance whose ``compute_attention`` was replaced (e.g. by a
    test) always takes the plain path. Values cached by
    :meth:`inference_cache` are rebuilt when a parameter or buffer they were
    derived from changes (another tensor, or its version counter moved: an
    optimizer step, ``load_state_dict``, any in-place operation autograd
    sees), and dropped by ``train()`` / ``eval()``, ``.to()`` / ``.half()``
    / any ``_apply``, ``load_state_dict``, ``copy.deepcopy`` and pickling.
    Writes through ``param.data`` bypass the version counter (mmengine's
    ``EMAHook`` swaps parameters that way): call ``model.eval()`` (as
    mmengine's validation and test loops do right after that swap) or
    :func:`clear_inference_caches` after them.

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
        _check_positive_int(name, 'in_channels', in_channels)
        _check_positive_int(name, 'out_channels', out_channels)
        _check_positive_int(name, 'groups', groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f'{name}: in_channels ({in_channels}) and out_channels '
                f'({out_channels}) must both be divisible by groups '
                f'({groups})')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        _check_pair(name, 'kernel_size', self.kernel_size, 1)
        _check_pair(name, 'stride', self.stride, 1)
        _check_pair(name, 'padding', self.padding, 0)
        _check_pair(name, 'dilation', self.dilation, 1)
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
        """Number of kernels (experts) ``K``."""
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

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error for an input this layer cannot take."""
        if not isinstance(x, Tensor):
            raise TypeError(f'{type(self).__name__} expects a Tensor, got '
                            f'{type(x).__name__}')
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects an input of shape '
                f'[N, {self.in_channels}, H, W], got {list(x.shape)}')

    def forward(self, x: Tensor) -> Tensor:
        """Input ``[B, C_in, H, W]`` -> output ``[B, C_out, H_out, W_out]``.

        Eval mode without autograd, compilation or tracing:
        :meth:`forward_inference` (same numbers, see the class doc).
        """
        self.check_input(x)
        plain = 'compute_attention' in self.__dict__
        if not (self.training or plain) and eager_inference():
            return self.forward_inference(x)
        if not plain and (type(self).compute_attention
                          is DynamicConv2d.compute_attention):
            return self._forward_pooled(x)
        return self.convolve(dynamic_conv2d, x, self.compute_attention(x))

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
        if not produced:
            return dynamic_conv2d(x, self.weight, self.bias, self.stride,
                                  self.padding, self.dilation, self.groups)
        conv_input = prepare_conv_input(
            x, self.weight.shape, self.stride, self.padding, self.dilation,
            self.groups, tuple(name in produced for name in _ATTENTIONS),
            bool(self.per_kernel_attentions()))
        attn = self.attention_from_pooled(conv_input.global_average())
        given = tuple(getattr(attn, name) is not None for name in _ATTENTIONS)
        if given != conv_input.attentions:
            raise RuntimeError(
                f'{type(self).__name__}: produced_attentions() declares '
                f'{sorted(produced)}, attention_from_pooled returned '
                f'{[n for n, g in zip(_ATTENTIONS, given) if g]}; make the '
                'two agree')
        return self.convolve(dynamic_conv2d, x, attn, conv_input=conv_input)

    # ------------------------------------------------------------------
    # Inference path: eval mode, no autograd, nothing compiled or traced
    def forward_inference(self, x: Tensor) -> Tensor:
        """:meth:`forward` for an eval-mode call without autograd.

        :meth:`inference_attention`, then
        :func:`~.functional.dynamic_conv2d_inference`. Called by
        :meth:`forward` only when :func:`~.functional.eager_inference`
        holds; a family that overrides :meth:`forward` ignores it.
        """
        return self.convolve(dynamic_conv2d_inference, x,
                             self.inference_attention(x))

    def inference_attention(self, x: Tensor) -> DynamicAttention:
        """The attentions of an eval-mode call without autograd: the numbers
        of :meth:`compute_attention` (default: it), possibly computed from
        values cached with :meth:`inference_cache`."""
        return self.compute_attention(x)

    def inference_cache(self,
                        source: nn.Module,
                        build: Callable[[], Any],
                        key: Hashable = None) -> Any:
        """Values derived from the state of ``source``, built once.

        ``build()`` runs without autograd when nothing is cached yet, when
        ``key`` (e.g. the temperature) differs from the cached one, when a
        parameter or buffer of ``source`` or of its descendants is another
        tensor (a replaced module, e.g. a SyncBN conversion, or
        ``load_state_dict(..., assign=True)``) or moved its version counter
        (an optimizer step, ``load_state_dict``, any in-place update
        autograd sees). The class doc lists what else drops the cache. One
        cache per layer: the last ``source`` / ``build`` wins.

        Args:
            source (nn.Module): The module the values derive from (e.g. the
                attention); its parameters and buffers are watched.
            build (callable): Returns the values.
            key (hashable): Anything else the values depend on.
        """
        cache = self.__dict__.get('_inference_cache')
        tensors = _state_tensors(source)
        versions = _versions(tensors)
        if (cache is not None and cache.source is source and cache.key == key
                and len(tensors) == len(cache.tensors)
                and all(map(operator.is_, tensors, cache.tensors))
                and versions == cache.versions):
            return cache.values
        with torch.no_grad():
            values = build()
        if versions is not None:
            self.__dict__['_inference_cache'] = _InferenceCache(
                source, key, tensors, versions, values)
        return values

    def clear_inference_cache(self) -> None:
        """Drop the values cached by :meth:`inference_cache`."""
        self.__dict__.pop('_inference_cache', None)

    def train(self, mode: bool = True) -> 'DynamicConv2d':
        """``nn.Module.train``; also drops the inference cache (so that
        ``eval()`` after a swap of parameters through ``.data``, as
        mmengine's ``EMAHook`` does, sees the new values)."""
        self.clear_inference_cache()
        return super().train(mode)

    def _apply(self, fn, recurse=True):
        # .to(), .cuda(), .half(), ...: cached values would keep the old
        # device and dtype
        self.clear_inference_cache()
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        # load_state_dict(..., assign=True) replaces the tensors themselves
        self.clear_inference_cache()
        super()._load_from_state_dict(*args, **kwargs)

    def __getstate__(self) -> dict:
        # copy.deepcopy (e.g. an EMA model) and pickling start without it
        state = self.__dict__.copy()
        state.pop('_inference_cache', None)
        return state

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

    def attention_modules(self) -> List[nn.Module]:
        """The ``nn.Linear`` / ``nn.Conv2d`` modules that compute the
        attention from the pooled input (default: every such submodule)."""
        return [
            m for m in self.modules()
            if m is not self and isinstance(m, (nn.Linear, nn.Conv2d))
        ]

    def attention_flops(self) -> int:
        """Multiply-adds of the attention per sample (pooling excluded).

        Default: every module of :meth:`attention_modules` applied once to
        pooled features (``in * out`` for a Linear, ``in / groups * out *
        kh * kw`` for a conv on a 1x1 map).
        """
        total = 0
        for m in self.attention_modules():
            if isinstance(m, nn.Linear):
                total += m.in_features * m.out_features
            else:
                total += (
                    m.in_channels // m.groups * m.out_channels *
                    m.kernel_size[0] * m.kernel_size[1])
        return total

    def flops(self, input_shape: Sequence[int]) -> Dict[str, int]:
        """FLOPs (multiply-adds) of one forward pass for ``[B, C_in, H, W]``.

        What :func:`~.functional.dynamic_conv2d` computes: global average
        pooling (``C_in * H * W`` adds), the attention
        (:meth:`attention_flops`), the kernel aggregation (``K * N`` for the
        mixture with ``N`` = :attr:`kernel_numel`, nothing when ``K = 1``;
        ``C_in * kh * kw`` to combine input-channel and spatial
        attention; ``N`` per attention multiplied into the kernel, or one
        multiply per element of the feature map it scales instead), and the
        convolution (``N * H_out * W_out`` per sample). With attentions one
        per kernel (:meth:`per_kernel_attentions`), per sample and kernel:
        its output side (``a_kernel * a_out``, ``C_out``), its input side
        (``a_in * a_spatial``, ``C_in * kh * kw``), ``N`` per side
        multiplied into the kernel, and ``N`` to add it to the sum. Without
        any attention: the convolution only.

        Returns:
            dict: ``pool``, ``attention``, ``aggregation``, ``conv``.
        """
        batch, cin, height, width = (int(v) for v in input_shape)
        cout, groups = self.out_channels, self.groups
        kh, kw = self.kernel_size
        h_out, w_out = self.output_size(height, width)
        numel = self.kernel_numel
        conv = batch * numel * h_out * w_out
        produced = set(self.produced_attentions())
        if not produced:
            return dict(pool=0, attention=0, aggregation=0, conv=conv)
        num_kernels = self.num_kernels
        has_kernel = 'kernel' in produced
        has_spatial = 'spatial' in produced
        has_in, has_out = 'in_channel' in produced, 'out_channel' in produced
        if self.per_kernel_attentions():
            # per sample and kernel: combine each side, scale, accumulate
            in_side, out_side = has_in or has_spatial, has_out or has_kernel
            per_kernel = numel * (in_side + out_side)
            if has_in and has_spatial:
                per_kernel += cin * kh * kw
            if has_out and has_kernel:
                per_kernel += cout
            agg = batch * (
                num_kernels * per_kernel + (num_kernels - 1) * numel)
        else:
            fold_in, fold_out = fold_channel_attention(
                (batch, cin, height, width),
                (num_kernels, cout, cin // groups, kh, kw), self.stride,
                self.padding, self.dilation, groups, has_kernel or has_spatial,
                has_in, has_out)
            agg = num_kernels * numel if has_kernel else 0
            if fold_in and has_spatial:
                agg += cin * kh * kw  # in_attn x spatial_attn
            agg += numel * ((fold_in or has_spatial) + fold_out)
            agg *= batch
            if has_in and not fold_in:
                agg += batch * cin * height * width
            if has_out and not fold_out:
                agg += batch * cout * h_out * w_out
        return dict(
            pool=batch * cin * height * width,
            attention=batch * self.attention_flops(),
            aggregation=agg,
            conv=conv)

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        """``(H_out, W_out)`` for an input of ``height`` x ``width``."""
        geometry = zip((height, width), self.kernel_size, self.stride,
                       self.padding, self.dilation)
        return tuple(
            conv_output_size(size, k, s, p, d)
            for size, k, s, p, d in geometry)

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

        Called once per family by :func:`finalize_dynamic_convs` (which the
        backbones call after placing their convs), with every conv of exactly
        this class inside ``owner``, in module order, named relative to
        ``owner``. A family whose convs share state (a kernel warehouse) adds
        it to ``owner`` here. Default: nothing to do.
        """

    @classmethod
    def freeze_group(cls, owner: nn.Module,
                     convs: List[Tuple[str, 'DynamicConv2d']]) -> None:
        """Freeze the state shared with ``convs``, which ``owner`` has just
        frozen (``frozen_stages``); called by :func:`freeze_dynamic_convs`.
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


def _state_tensors(module: nn.Module) -> List[Optional[Tensor]]:
    """The parameters and buffers (``None`` included) of ``module`` and of
    its descendants, read from the module dicts (cheaper than
    ``named_parameters``, which runs on every inference call)."""
    tensors: List[Optional[Tensor]] = []
    stack = [module]
    while stack:
        m = stack.pop()
        if m is None:
            continue
        tensors.extend(m._parameters.values())
        tensors.extend(m._buffers.values())
        stack.extend(m._modules.values())
    return tensors


def _versions(tensors: List[Optional[Tensor]]) -> Optional[List[int]]:
    """Version counters (-1 for ``None``); ``None`` when a tensor has none
    (an inference tensor, made under ``torch.inference_mode``: nothing is
    cached then)."""
    try:
        return [-1 if t is None else t._version for t in tensors]
    except RuntimeError:
        return None


class _InferenceCache:
    """What :meth:`DynamicConv2d.inference_cache` keeps: the values, and
    what they were derived from (the tensors themselves are held, so their
    identities stay unique while cached)."""

    __slots__ = ('source', 'key', 'tensors', 'versions', 'values')

    def __init__(self, source: nn.Module, key: Hashable,
                 tensors: List[Optional[Tensor]], versions: List[int],
                 values: Any) -> None:
        self.source = source
        self.key = key
        self.tensors = tensors
        self.versions = versions
        self.values = values


def clear_inference_caches(module: nn.Module) -> int:
    """Drop the inference cache of every dynamic conv inside ``module``.

    Needed only after writes the version counters do not see (through
    ``param.data``) when ``module.eval()`` is not called afterwards.

    Returns:
        int: The number of dynamic convs visited.
    """
    convs = [m for m in module.modules() if isinstance(m, DynamicConv2d)]
    for conv in convs:
        conv.clear_inference_cache()
    return len(convs)


def _group_by_family(
    module: nn.Module,
    names: Optional[Iterable[str]] = None
) -> Dict[type, List[Tuple[str, DynamicConv2d]]]:
    """``{family class: [(name, conv), ...]}`` in module order."""
    wanted = None if names is None else set(names)
    groups: Dict[type, List[Tuple[str, DynamicConv2d]]] = {}
    for name, m in module.named_modules():
        if isinstance(m, DynamicConv2d) and (wanted is None or name in wanted):
            groups.setdefault(type(m), []).append((name, m))
    return groups


def finalize_dynamic_convs(module: nn.Module) -> None:
    """Let every family complete its convs inside ``module``.

    Calls :meth:`DynamicConv2d.finalize_group` once per conv class found.
    Backbones call it after placing their dynamic convs; a model that places
    dynamic convs by other means calls it once, after building.
    """
    for cls, convs in _group_by_family(module).items():
        cls.finalize_group(module, convs)


def freeze_dynamic_convs(module: nn.Module, names: Iterable[str]) -> None:
    """Let every family freeze the state its frozen convs share.

    Args:
        module (nn.Module): The model (e.g. a backbone).
        names (Iterable[str]): Names (relative to ``module``) of the dynamic
            convs that were frozen.
    """
    for cls, convs in _group_by_family(module, names).items():
        cls.freeze_group(module, convs)


class TemperatureMixin:
    """A temperature that is not saved, checked against the family's range.

    Families with a temperature derive from this mixin and declare
    :attr:`DynamicConv2d.temperature_default` (and, where it differs from
    ``T > 0``, :attr:`~DynamicConv2d.temperature_range`).
    """

    _temperature: float

    @property
    def temperature(self) -> float:
        """The attention temperature (see the family's
        ``temperature_doc``)."""
        return self._temperature

    @temperature.setter
    def temperature(self, value: Optional[float]) -> None:
        if value is None:
            value = type(self).temperature_default
        self._temperature = check_temperature(type(self), value)


def is_temperature_number(value: Any) -> bool:
    """Whether ``value`` is a real number a temperature can take (an
    ``int``, a ``float``, a NumPy scalar or a one-element real tensor; not
    a ``bool``, a string or a sequence)."""
    if isinstance(value, Tensor):
        return value.numel() == 1 and not value.is_complex() \
            and value.dtype != torch.bool
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def temperature_range_text(cls: type) -> str:
    """The valid temperatures of family ``cls``, e.g. ``'(0, inf]'``."""
    low, high = cls.temperature_range
    bound = '[' if cls.temperature_low_inclusive else '('
    return f'{bound}{low:g}, {high:g}]'


def check_temperature(cls: type, value: Any) -> float:
    """Return ``value`` as a float if it is a valid temperature of family
    ``cls``.

    Raises:
        TypeError: Not a number (e.g. the string ``'30'``, a list, a bool).
        ValueError: Outside the family's :attr:`temperature_range`.
    """
    doc = f' ({cls.temperature_doc})' if cls.temperature_doc else ''
    if not is_temperature_number(value):
        raise TypeError(
            f'{cls.__name__}: temperature must be a number in '
            f'{temperature_range_text(cls)} or None (the family\'s default, '
            f'{cls.temperature_default}), got {value!r} of type '
            f'{type(value).__name__}{doc}')
    value = float(value)
    low, high = cls.temperature_range
    above = value >= low if cls.temperature_low_inclusive else value > low
    if not (above and value <= high and not math.isnan(value)):
        raise ValueError(f'{cls.__name__}: temperature must be in '
                         f'{temperature_range_text(cls)}, got {value}{doc}')
    return value


def _synced_across_ranks(norm: nn.Module) -> bool:
    return (isinstance(norm, nn.SyncBatchNorm) and dist.is_available()
            and dist.is_initialized() and dist.get_world_size() > 1)


def normalise_pooled(norm: Optional[nn.Module], z: Tensor) -> Tensor:
    """Apply an attention's norm to pooled features ``[B, C]``.

    A BatchNorm in training mode cannot compute statistics from a single
    sample (the released ODConv / KernelWarehouse modules fail there): a
    batch of one is normalised with the running statistics, as in
    evaluation, and the running statistics stay unchanged. SyncBN across
    several processes uses the statistics of the global batch as usual.
    ``norm=None`` returns ``z``.
    """
    if norm is None:
        return z
    if (isinstance(norm, _BatchNorm) and norm.running_mean is not None
            and (not norm.training or
                 (z.size(0) == 1 and not _synced_across_ranks(norm)))):
        return F.batch_norm(z, norm.running_mean, norm.running_var,
                            norm.weight, norm.bias, False, 0.0, norm.eps)
    return norm(z.view(z.size(0), -1, 1, 1)).view(z.size(0), -1)


def init_attention_weights(module: nn.Module, layer_types: Tuple[type,
                                                                 ...]) -> None:
    """Initialise an attention module as the released ODConv /
    KernelWarehouse code does: Kaiming-normal (fan_out, ReLU) weights and
    zero biases for every submodule of ``layer_types``, weight 1 and bias 0
    for its norms."""
    for m in module.modules():
        if isinstance(m, layer_types):
            nn.init.kaiming_normal_(
                m.weight, mode='fan_out', nonlinearity='relu')
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (_BatchNorm, nn.GroupNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def global_average(x: Tensor) -> Tensor:
    """Global average pooling, ``[B, C, H, W]`` -> ``[B, C]``.

    Computed as a sum scaled afterwards: the gradient of the sum is a
    broadcast view of the pooled ``[B, C]`` gradient, which autograd adds to
    the conv's input gradient in one pass. ``mean``'s backward divides the
    broadcast gradient into a new feature-map-sized tensor first.
    """
    return x.sum(dim=(2, 3)) * (1.0 / (x.size(2) * x.size(3)))
