"""Released checkpoints rebuilt from their key lists, for tests.

A release's checkpoint is stood in for by its key list (``key<TAB>shape``
lines, as in ``tests/data/official_keys/*.txt``) and a seed: every tensor is
drawn, in key order, from one ``torch.Generator`` by :func:`release_tensor`.
The same rule filled the released model that produced the reference
features, so a test rebuilds exactly the weights the reference was computed
with, without storing them.
"""
import math
import re
from collections import OrderedDict
from typing import Dict, Sequence

import torch
from torch import Tensor

#: ``{key: shape}``, in the order of a state dict.
Shapes = Dict[str, Sequence[int]]


def read_key_list(path: str) -> Shapes:
    """``{key: shape}`` of a ``key<TAB>shape`` list (``#`` lines skipped),
    in file order."""
    shapes: Shapes = OrderedDict()
    with open(path) as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            key, shape = line.rstrip('\n').split('\t')
            shapes[key] = [int(s) for s in re.findall(r'\d+', shape)]
    return shapes


def format_key_list(shapes: Shapes, header: Sequence[str] = ()) -> str:
    """The text that :func:`read_key_list` reads."""
    lines = [f'# {h}' for h in header]
    lines += [f'{k}\t{list(s)}' for k, s in shapes.items()]
    return '\n'.join(lines) + '\n'


def release_tensor(key: str, shape: Sequence[int],
                   gen: torch.Generator) -> Tensor:
    """One tensor of a filled release, drawn from ``gen``.

    Norm scales and running variances in ``[0.5, 1.5)``, biases and running
    means ``N(0, 0.1^2)``, every other tensor (conv / linear weights,
    warehouse cells) ``N(0, 2 / fan_in)`` with ``fan_in`` the product of its
    shape after the first axis; ``num_batches_tracked`` is 0 and draws
    nothing.
    """
    shape = list(shape)
    if key.endswith('num_batches_tracked'):
        return torch.tensor(0)
    if key.endswith('running_var') or (len(shape) == 1
                                       and key.endswith('.weight')):
        return torch.rand(shape, generator=gen) + 0.5
    if len(shape) <= 1:
        return torch.randn(shape, generator=gen) * 0.1
    fan_in = math.prod(shape[1:])
    return torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)


def release_state_dict(shapes: Shapes,
                       seed: int = 0) -> 'OrderedDict[str, Tensor]':
    """Every key of ``shapes`` filled by :func:`release_tensor`, in order,
    from ``torch.Generator().manual_seed(seed)``."""
    gen = torch.Generator().manual_seed(seed)
    return OrderedDict((key, release_tensor(key, shape, gen))
                       for key, shape in shapes.items())


def release_input(shape: Sequence[int], seed: int = 1) -> Tensor:
    """The fixed input of the reference features: ``N(0, 1)`` from
    ``torch.Generator().manual_seed(seed)``."""
    return torch.randn(
        list(shape), generator=torch.Generator().manual_seed(seed))


def mmdet2_head_shapes(in_channels: Sequence[int],
                       with_mask: bool,
                       num_classes: int = 80) -> Shapes:
    """Keys and shapes of MMDetection 2.x's FPN + ``RPNHead`` +
    ``Shared2FCBBoxHead`` (+ ``FCNMaskHead``), as the released Faster / Mask
    R-CNN configs build them (256 channels, 3 anchors, 7x7 RoIs)."""
    shapes: Shapes = OrderedDict()
    for i, c in enumerate(in_channels):
        shapes[f'neck.lateral_convs.{i}.conv.weight'] = [256, c, 1, 1]
        shapes[f'neck.lateral_convs.{i}.conv.bias'] = [256]
    for i in range(len(in_channels)):
        shapes[f'neck.fpn_convs.{i}.conv.weight'] = [256, 256, 3, 3]
        shapes[f'neck.fpn_convs.{i}.conv.bias'] = [256]
    for name, out, k in (('rpn_conv', 256, 3), ('rpn_cls', 3, 1), ('rpn_reg',
                                                                   12, 1)):
        shapes[f'rpn_head.{name}.weight'] = [out, 256, k, k]
        shapes[f'rpn_head.{name}.bias'] = [out]
    for name, out, cin in (('shared_fcs.0', 1024,
                            256 * 7 * 7), ('shared_fcs.1', 1024, 1024),
                           ('fc_cls', num_classes + 1,
                            1024), ('fc_reg', 4 * num_classes, 1024)):
        shapes[f'roi_head.bbox_head.{name}.weight'] = [out, cin]
        shapes[f'roi_head.bbox_head.{name}.bias'] = [out]
    if with_mask:
        head = 'roi_head.mask_head'
        for i in range(4):
            shapes[f'{head}.convs.{i}.conv.weight'] = [256, 256, 3, 3]
            shapes[f'{head}.convs.{i}.conv.bias'] = [256]
        shapes[f'{head}.upsample.weight'] = [256, 256, 2, 2]  # transposed
        shapes[f'{head}.upsample.bias'] = [256]
        shapes[f'{head}.conv_logits.weight'] = [num_classes, 256, 1, 1]
        shapes[f'{head}.conv_logits.bias'] = [num_classes]
    return shapes


def numbered_state_dict(shapes: Shapes) -> 'OrderedDict[str, Tensor]':
    """Tensor ``i`` of ``shapes`` holds the value ``i`` everywhere (a scalar
    expanded to its shape: nothing is allocated), so a test can tell where
    every tensor ended up (:func:`tensor_number`)."""
    out = OrderedDict()
    for i, (key, shape) in enumerate(shapes.items()):
        if key.endswith('num_batches_tracked'):
            out[key] = torch.tensor(i)
        else:
            out[key] = torch.tensor(float(i)).expand(list(shape))
    return out


def tensor_number(tensor: Tensor) -> int:
    """The number of a :func:`numbered_state_dict` tensor (raises if its
    values differ: a tensor was mixed up)."""
    flat = tensor.reshape(-1)
    if not bool((flat == flat[0]).all()):
        raise AssertionError('a tensor holds values of several tensors')
    return int(flat[0])
