"""How the layers package is cut: no module imports an underscore name of
another (what the families share is public), and a KernelWarehouse conv
learns the release's conv names from a namer its owner's side registers (it
knows no module paths itself). The order of the subpackages (layers never
import the analysis tools) is ``tests/test_package_layering.py``'s."""
import ast
import os.path as osp
import pkgutil

import torch.nn as nn

import dynconv_mmdet.models.layers as layers
from dynconv_mmdet.models.backbones.layout import KW_RELEASE_NAMES
from dynconv_mmdet.models.layers import KWConv2d, finalize_dynamic_convs
from dynconv_mmdet.models.layers.kernel_warehouse import (
    register_release_namer, release_namer)

ROOT = osp.dirname(layers.__file__)


def _modules():
    """``(dotted name, path)`` of every module of the layers package."""
    yield layers.__name__, layers.__file__
    for info in pkgutil.walk_packages([ROOT], layers.__name__ + '.'):
        spec = info.module_finder.find_spec(info.name.rsplit('.', 1)[-1])
        yield info.name, spec.origin


def _imports(name, path):
    """``(imported module, [imported names])`` of one module, relative
    imports resolved."""
    package = name if path.endswith('__init__.py') else name.rsplit('.', 1)[0]
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = package.split('.')
            if node.level:
                base = base[:len(base) - node.level + 1]
                module = '.'.join(base +
                                  ([node.module] if node.module else []))
            else:
                module = node.module
            yield module, [alias.name for alias in node.names]


def test_no_module_imports_private_names_of_another():
    modules = dict(_modules())
    assert {
        'dynconv_mmdet.models.layers.functional',
        'dynconv_mmdet.models.layers.kernel_warehouse'
    } <= set(modules)
    for name, path in modules.items():
        for module, names in _imports(name, path):
            if module.startswith(layers.__name__):
                private = [n for n in names if n.startswith('_')]
                assert not private, f'{name} imports {private} from {module}'


def test_release_names_come_from_the_owner_side():
    # the backbones register mmdet's ResNet / MobileNetV2 paths
    for arch, namer in KW_RELEASE_NAMES.items():
        assert release_namer(arch) is namer
    assert release_namer('no such arch') is None

    class Owner(nn.Module):
        pretrained_arch = 'test_module_layout_owner'

        def __init__(self):
            super().__init__()
            self.a = KWConv2d(8, 8, 1)
            self.b = KWConv2d(8, 8, 1)
            self.c = KWConv2d(8, 8, 1)

    owner = Owner()
    finalize_dynamic_convs(owner)  # nothing registered: one per path
    assert owner.warehouse_manager.names == ['a', 'b', 'c']
    register_release_namer(
        Owner.pretrained_arch, lambda owner, path: None
        if path == 'c' else f'stage0_layer{ord(path) - 96}_conv0')
    owner = Owner()
    finalize_dynamic_convs(owner)
    # fused by the default sharing range; 'c' has no release name
    assert owner.warehouse_manager.names == ['stage0_layer_conv', 'c']
