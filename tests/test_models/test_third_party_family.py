"""A dynamic conv family defined outside the package works everywhere.

The family is written by the test into its own module (as a user's project
would), registered in mmengine's root ``MODELS`` and imported through a
config's ``custom_imports``. Without editing the package it is placed by a
backbone's ``dynamic=``, trained inside a detector, counted by the complexity
tool, timed by the benchmark and left alone by ``set_temperature``.
"""
import importlib
import os.path as osp
import sys
import textwrap

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.structures import InstanceData

from dynconv_mmdet.analysis import benchmark, model_flops
from dynconv_mmdet.models.layers import (DynamicConv2d, get_temperatures,
                                         set_temperature)

PLUGIN = textwrap.dedent('''
    """A user's own dynamic conv: K kernels mixed by a softmax router."""
    import torch
    import torch.nn as nn
    from mmengine.registry import MODELS

    from dynconv_mmdet.models.layers import DynamicAttention, DynamicConv2d


    @MODELS.register_module()
    class {name}(DynamicConv2d):

        def __init__(self, in_channels, out_channels, kernel_size, stride=1,
                     padding=0, dilation=1, groups=1, bias=False,
                     num_kernels=2):
            super().__init__(in_channels, out_channels, kernel_size, stride,
                             padding, dilation, groups, bias, num_kernels)
            self.router = nn.Linear(in_channels, num_kernels)
            self.init_weights()

        def compute_attention(self, x):
            logits = self.router(x.mean(dim=(2, 3)))
            return DynamicAttention(kernel=torch.softmax(logits, dim=1))
''')
LAST_STAGE = (False, False, False, True)
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def plugin(tmp_path_factory):
    """``(module name, conv type)`` of a plugin written to a temporary
    folder on ``sys.path`` and imported by a config's ``custom_imports``."""
    root = tmp_path_factory.mktemp('user_project')
    module, conv_type = 'user_foo_conv', 'UserFooConv2d'
    (root / f'{module}.py').write_text(PLUGIN.format(name=conv_type))
    (root / 'cfg.py').write_text(
        f'custom_imports = dict(imports=[{module!r}], '
        'allow_failed_imports=False)\n')
    sys.path.insert(0, str(root))
    try:
        Config.fromfile(str(root / 'cfg.py'))  # imports the plugin
        assert module in sys.modules
        yield module, conv_type
    finally:
        sys.path.remove(str(root))


def _backbone(conv_type, **kwargs):
    return MODELS.build(
        dict(
            type='DynamicResNet',
            depth=18,
            dynamic=dict(
                conv_cfg=dict(type=conv_type, num_kernels=3),
                stages=LAST_STAGE),
            **kwargs))


def test_placed_by_a_backbone_layout(plugin):
    _, conv_type = plugin
    model = _backbone(conv_type)
    placed = {
        n: type(m).__name__
        for n, m in model.named_modules() if isinstance(m, DynamicConv2d)
    }
    assert placed == {
        f'layer4.{b}.conv{c}': conv_type
        for b in range(2)
        for c in (1, 2)
    }
    assert model.layer4[0].conv1.num_kernels == 3
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 16, 16), (2, 128, 8, 8),
                                              (2, 256, 4, 4), (2, 512, 2, 2)]


def test_trained_inside_a_detector(plugin):
    _, conv_type = plugin
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'faster_rcnn_r50_fpn_1x.py'))
    model_cfg = cfg.model
    model_cfg.backbone.update(
        depth=18,
        init_cfg=None,
        frozen_stages=-1,
        zero_init_residual=False,
        dynamic=dict(
            conv_cfg=dict(type=conv_type, num_kernels=3), stages=LAST_STAGE))
    model_cfg.neck.update(in_channels=[64, 128, 256, 512], out_channels=16)
    model_cfg.rpn_head.update(in_channels=16, feat_channels=16)
    model_cfg.roi_head.bbox_roi_extractor.out_channels = 16
    model_cfg.roi_head.bbox_head.update(
        in_channels=16, fc_out_channels=32, num_classes=2)
    detector = MODELS.build(model_cfg)
    detector.init_weights()
    optim = OptimWrapper(
        torch.optim.SGD(detector.parameters(), lr=0.01, momentum=0.9))
    conv = detector.backbone.layer4[1].conv2
    before = (conv.weight.detach().clone(),
              conv.router.weight.detach().clone())

    sample = DetDataSample(
        metainfo=dict(
            img_shape=(64, 64),
            ori_shape=(64, 64),
            pad_shape=(64, 64),
            scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[8.0, 8.0, 40.0, 40.0]]),
        labels=torch.tensor([1]))
    data = dict(
        inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)] * 2,
        data_samples=[sample, sample.clone()])
    detector.train()
    for _ in range(2):
        losses = detector.train_step(data, optim)
        assert all(torch.isfinite(v) for v in losses.values())
    assert not torch.equal(conv.weight, before[0])
    assert not torch.equal(conv.router.weight, before[1])


def test_counted_by_the_complexity_tool(plugin):
    module, conv_type = plugin
    model = _backbone(conv_type)
    flops = model_flops(model, (1, 3, 64, 64))
    # the generic count of the family: the router Linear C_in -> K per layer
    # (layer4 of ResNet-18: conv1 of block 0 takes 256 channels, the other
    # three convs 512), K = 3 kernels mixed into each
    assert flops['dynamic attention'] == 3 * (256 + 3 * 512)
    conv = model.layer4[0].conv2
    assert conv.flops((1, 512, 2, 2))['aggregation'] == 3 * conv.kernel_numel

    tool = importlib.import_module('tools.analysis_tools.backbone_complexity')
    rows = tool.main([
        '--backbones', 'ResNet-50', '--presets', 'static', '--shape', '64',
        '64', '--custom-imports', module, '--dynamic',
        f"foo=dict(conv_cfg=dict(type='{conv_type}'), stages=(True,) * 4)"
    ])
    assert [r['preset'] for r in rows] == ['static', 'foo']
    foo = rows[1]
    assert foo['extra_params'] > 0
    assert foo['flops_by_kind']['dynamic attention'] > 0


def test_left_alone_by_set_temperature(plugin):
    _, conv_type = plugin
    model = _backbone(conv_type, preset='static')
    assert get_temperatures(model) == {}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert set_temperature(model, 30.0) == 0
    assert all(
        torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_timed_by_the_benchmark(plugin, capsys):
    module, conv_type = plugin
    layout = (f"foo=dict(conv_cfg=dict(type='{conv_type}'), "
              'stages=(False,) * 3 + (True,))')
    assert benchmark.main([
        '--quick', '--only', 'backbones', '--presets', 'odconv1x',
        '--custom-imports', module, '--dynamic', layout, '--no-memory',
        '--repeats', '1', '--train-repeats', '1'
    ]) == 0
    out = capsys.readouterr().out
    rows = [
        line for line in out.splitlines()
        if line.startswith('| ResNet-18') and '| foo |' in line
    ]
    # training and inference rows; the family keeps the base forward, so
    # its released formulation (batch folded into the groups) comes from
    # its compute_attention and is checked against ours before timing
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        static, released, ours = (float(c) for c in cells[3:6])
        assert static > 0 and released > 0 and ours > 0
    assert 'exactness (ours vs released): PASSED' in out
