"""Generate the FDConv reference vectors in this folder from the release.

Run from the repository root with the release's module (github
Linwei-Chen/FDConv, ``FDConv_detection/mmdet_custom/FDConv.py``; nothing of
it is kept here)::

    python tests/data/fdconv/generate_vectors.py --release path/to/FDConv.py

The release imports mmcv 1.x's ``CONV_LAYERS`` registry, ``timm`` and
``matplotlib``; the stand-ins below provide what it uses of them (a
registry decorator, ``trunc_normal_``, nothing of matplotlib) while it is
imported, and the installed packages are restored afterwards. Each case
builds the release's ``FDConv`` with the case's arguments, draws every
parameter and the attention BatchNorm's statistics at random so that every
attention path matters, and stores (``numpy.savez_compressed``) the state
dict before any forward (``state_dict.<release key>``), the input ``x``, the
upstream gradient ``g`` and, for a batch of two, ``out_train``,
``grad_x_train`` and ``grad_train.<key>`` (train mode, loss ``sum(out *
g)``); then ``out_eval`` (eval mode, after that train forward updated the
statistics), ``grad_x_eval`` and ``grad_eval.<key>``. The release cannot
train on one image (its BatchNorm fails), so a batch of one has the eval
entries only. ``cases.json`` lists each case's constructor arguments and
input shape.
"""
import argparse
import importlib.util
import json
import os.path as osp
import sys
import types

import numpy as np
import torch

HERE = osp.dirname(osp.abspath(__file__))

#: name -> (constructor keyword arguments, input shape)
CASES = {
    'k3_s1_K16_b2': (dict(
        in_channels=8,
        out_channels=16,
        kernel_size=3,
        padding=1,
        kernel_num=16), (2, 8, 7, 9)),
    'k3_s2_K16_b1': (dict(
        in_channels=8,
        out_channels=16,
        kernel_size=3,
        stride=2,
        padding=1,
        kernel_num=16), (1, 8, 5, 5)),
    'k3_s2_K16_b2': (dict(
        in_channels=8,
        out_channels=16,
        kernel_size=3,
        stride=2,
        padding=1,
        kernel_num=16), (2, 8, 5, 7)),
    'k3_s1_K64_bias_b2': (dict(
        in_channels=10,
        out_channels=16,
        kernel_size=3,
        padding=1,
        kernel_num=64,
        bias=True), (2, 10, 9, 7)),
    'k3_s1_K64_b1': (dict(
        in_channels=10,
        out_channels=16,
        kernel_size=3,
        padding=1,
        kernel_num=64), (1, 10, 7, 7)),
    'k1_widen_K64_b2':
    (dict(in_channels=14, out_channels=64, kernel_size=1,
          kernel_num=64), (2, 14, 3, 3)),
    'k1_widen_K64_b1':
    (dict(in_channels=14, out_channels=64, kernel_size=1,
          kernel_num=64), (1, 14, 5, 3)),
}
#: The release's rules leave widths <= 16 dense; the tiny test widths need
#: a lower threshold.
COMMON = dict(use_fdconv_if_c_gt=4)  # bias: False unless a case says


class _Registry:
    """mmcv 1.x ``CONV_LAYERS`` stand-in: ``register_module()`` returns the
    class unchanged."""

    def register_module(self, *args, **kwargs):
        return lambda cls: cls


def _stand_ins():
    mmcv = types.ModuleType('mmcv')
    cnn = types.ModuleType('mmcv.cnn')
    cnn.CONV_LAYERS = _Registry()
    mmcv.cnn = cnn
    timm = types.ModuleType('timm')
    models = types.ModuleType('timm.models')
    layers = types.ModuleType('timm.models.layers')
    layers.trunc_normal_ = torch.nn.init.trunc_normal_
    timm.models, models.layers = models, layers
    mpl = types.ModuleType('matplotlib')
    pyplot = types.ModuleType('matplotlib.pyplot')
    mpl.pyplot = pyplot
    return {
        'mmcv': mmcv,
        'mmcv.cnn': cnn,
        'timm': timm,
        'timm.models': models,
        'timm.models.layers': layers,
        'matplotlib': mpl,
        'matplotlib.pyplot': pyplot
    }


def import_release(path):
    """The release's module, imported with the stand-ins in place."""
    stand_ins = _stand_ins()
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        spec = importlib.util.spec_from_file_location('fdconv_release', path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    return module


@torch.no_grad()
def randomise(module):
    """Every parameter and the BN statistics at random, scaled so that
    every attention is far from its constant start."""
    for name, p in module.named_parameters():
        if name == 'dft_weight':
            p.copy_(torch.randn_like(p) * 0.05)
        elif name.endswith('norm.weight') or name.endswith('bn.weight'):
            p.copy_(1 + 0.3 * torch.randn_like(p))
        elif name.endswith('relu.scale'):
            p.copy_(1 + 0.2 * torch.randn_like(p))
        else:
            p.copy_(torch.randn_like(p) * 0.4)
    bn = module.KSM_Global.bn
    bn.running_mean.copy_(torch.randn_like(bn.running_mean) * 0.2)
    bn.running_var.copy_(0.5 + torch.rand_like(bn.running_var))


def run(module, x, g):
    x = x.clone().requires_grad_(True)
    out = module(x)
    names = [n for n, _ in module.named_parameters()]
    grads = torch.autograd.grad(
        (out * g).sum(), [x] + [p for _, p in module.named_parameters()])
    return out.detach(), grads[0], dict(zip(names, grads[1:]))


def generate(release, name, kwargs, shape):
    torch.manual_seed(sum(map(ord, name)))
    kwargs = dict(COMMON, **dict(dict(bias=False), **kwargs))
    module = release.FDConv(**kwargs)
    randomise(module)
    arrays = {
        f'state_dict.{k}': v.numpy().copy()
        for k, v in module.state_dict().items()
    }
    x = torch.randn(*shape)
    module.eval()
    with torch.no_grad():
        g = torch.randn_like(module(x))
    arrays['x'], arrays['g'] = x.numpy(), g.numpy()
    if shape[0] > 1:
        module.train()
        out, grad_x, grads = run(module, x, g)
        arrays['out_train'], arrays['grad_x_train'] = out.numpy(), \
            grad_x.numpy()
        arrays.update({f'grad_train.{k}': v.numpy() for k, v in grads.items()})
    module.eval()
    out, grad_x, grads = run(module, x, g)
    arrays['out_eval'], arrays['grad_x_eval'] = out.numpy(), grad_x.numpy()
    arrays.update({f'grad_eval.{k}': v.numpy() for k, v in grads.items()})
    np.savez_compressed(osp.join(HERE, f'{name}.npz'), **arrays)
    return kwargs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--release', required=True, help="the release's FDConv.py")
    args = parser.parse_args()
    release = import_release(args.release)
    cases = {}
    for name, (kwargs, shape) in CASES.items():
        cases[name] = dict(
            kwargs=generate(release, name, kwargs, shape), shape=shape)
        print(name, 'done')
    with open(osp.join(HERE, 'cases.json'), 'w') as f:
        json.dump(cases, f, indent=1, sort_keys=True)
        f.write('\n')


if __name__ == '__main__':
    main()
