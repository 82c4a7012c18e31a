"""Keep only the backbone of a classification checkpoint, for detection.

A checkpoint saved by the classification project (mmpretrain layout, keys
``backbone.*``, ``neck.*``, ``head.*``) is reduced to the backbone weights
with the ``backbone.`` prefix stripped, i.e. exactly the ``state_dict`` of
``DynamicResNet`` / ``DynamicMobileNetV2``. Detection configs then use it
through ``init_cfg=dict(type='Pretrained', checkpoint=...)``. Example::

    python tools/model_converters/export_cls_backbone.py \
        work_dirs/odconv1x_resnet50_8xb32_in1k/epoch_100.pth \
        checkpoints/odconv1x_resnet50_in1k.pth

The temperature of DyConv / ODConv layers is not a weight, so nothing about
it is exported; detection runs at temperature 1 (ODConv, ICLR 2022).
"""
import argparse
import os
import os.path as osp
import sys
from collections import OrderedDict
from typing import Any, Dict, Mapping

import torch

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from dynconv_mmdet.utils.checkpoint import safe_torch_load  # noqa: E402


def extract_backbone(checkpoint: Mapping[str, Any],
                     prefix: str = 'backbone.') -> 'OrderedDict[str, Any]':
    """Return the backbone weights of a classification checkpoint.

    Args:
        checkpoint (Mapping): A loaded checkpoint, either with a
            ``state_dict`` entry (mmengine) or a plain state dict. A
            ``module.`` prefix (DataParallel) is removed first.
        prefix (str): Prefix of the backbone keys. Defaults to
            ``'backbone.'``.

    Returns:
        OrderedDict: The backbone state dict without ``prefix``.

    Raises:
        KeyError: If no key starts with ``prefix``.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping):
        raise TypeError('The checkpoint holds no state dict, got '
                        f'{type(state_dict).__name__}')
    backbone: 'OrderedDict[str, Any]' = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('module.'):
            key = key[len('module.'):]
        if key.startswith(prefix):
            backbone[key[len(prefix):]] = value
    if not backbone:
        sample = ', '.join(list(state_dict)[:5])
        raise KeyError(f'No key of the checkpoint starts with {prefix!r} '
                       f'(first keys: {sample}); is it a classification '
                       'checkpoint of the mmpretrain layout?')
    return backbone


def export_backbone(src: str,
                    dst: str,
                    prefix: str = 'backbone.') -> Dict[str, Any]:
    """Load ``src`` safely, keep its backbone and save it to ``dst``.

    Returns:
        dict: What was saved, ``{'meta': ..., 'state_dict': ...}``.
    """
    checkpoint = safe_torch_load(src)
    state_dict = extract_backbone(checkpoint, prefix)
    meta = dict(source=osp.basename(src), prefix=prefix)
    src_meta = checkpoint.get('meta') if isinstance(checkpoint, dict) \
        else None
    if isinstance(src_meta, Mapping):
        for key in ('epoch', 'iter', 'mmengine_version'):
            if key in src_meta:
                meta[key] = src_meta[key]
    out = dict(meta=meta, state_dict=state_dict)
    dst_dir = osp.dirname(osp.abspath(dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save(out, dst)
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Keep only the backbone of a classification checkpoint')
    parser.add_argument('src', help='classification checkpoint (.pth)')
    parser.add_argument('dst', help='output backbone checkpoint (.pth)')
    parser.add_argument(
        '--prefix',
        default='backbone.',
        help='prefix of the backbone keys (stripped)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    out = export_backbone(args.src, args.dst, args.prefix)
    num_params = sum(
        v.numel() for k, v in out['state_dict'].items()
        if torch.is_tensor(v) and not k.endswith('num_batches_tracked'))
    print(f'Saved {len(out["state_dict"])} backbone tensors '
          f'({num_params / 1e6:.6f}M values) to {args.dst}')


if __name__ == '__main__':
    main()
