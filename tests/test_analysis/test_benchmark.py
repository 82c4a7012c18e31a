"""dynconv_mmdet.analysis.benchmark (tools/analysis_tools/
benchmark_dynconv.py): the exactness check that guards every timing, the
released formulation swapped in by dynconv_mmdet.analysis.reference, and
the output of every part in --quick form."""
import importlib
import json
import os.path as osp
import re
import textwrap
import uuid

import pytest
import torch
import torch.nn as nn

from dynconv_mmdet.analysis import benchmark as bench
from dynconv_mmdet.analysis import reference
from dynconv_mmdet.analysis.benchmark import detectors
from dynconv_mmdet.models.layers import DynamicConv2d, ODConv2d

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(ROOT, 'configs')
FAST = ['--repeats', '1', '--train-repeats', '1', '--threads', '1']


def test_tool_is_the_package_command_line():
    tool = importlib.import_module('tools.analysis_tools.benchmark_dynconv')
    assert tool.main is bench.main


def test_checker_relative_to_largest_magnitude():
    ref = torch.randn(4, 5)
    assert bench.check_tensors('t', [ref.clone()], [ref], 1e-5) == 0
    # the tolerance scales with each tensor's largest magnitude
    for scale in (1e-6, 1.0, 1e6):
        r = ref * scale
        near = r.clone()
        near[0, 0] += 0.5e-5 * r.abs().max()
        assert bench.check_tensors('t', [near], [r], 1e-5) < 1e-5
        far = r.clone()
        far[1, 2] += 2e-5 * r.abs().max()
        with pytest.raises(bench.ExactnessError, match=r't \[w\]'):
            bench.check_tensors('t', [far], [r], 1e-5, labels=['w'])


def test_checker_rejects_structural_mismatch():
    a = torch.ones(3)
    with pytest.raises(bench.ExactnessError, match='None'):
        bench.check_tensors('t', [None], [a], 1e-5)
    with pytest.raises(bench.ExactnessError, match='shape'):
        bench.check_tensors('t', [torch.ones(4)], [a], 1e-5)
    with pytest.raises(bench.ExactnessError, match='tensors'):
        bench.check_tensors('t', [a, a], [a], 1e-5)
    with pytest.raises(bench.ExactnessError):
        bench.check_tensors('t', [torch.full((3, ), float('nan'))], [a], 1)
    # a numerically zero reference is compared to the floor
    noise = torch.full((3, ), 1e-20)
    assert bench.check_tensors('t', [noise], [-noise], 1e-4, floor=1.0) < 1e-4


def _perturbed(scale_out=1.0, weight_noise=0.0):
    original = reference.batch_folded_conv2d

    def wrong(x, weight, *args, **kwargs):
        weight = weight + weight_noise * weight.detach().abs().max()
        return original(x, weight, *args, **kwargs) * scale_out

    return wrong


@pytest.mark.parametrize('perturb', [
    dict(scale_out=1 + 1e-4),
    dict(weight_noise=1e-3),
])
def test_check_module_catches_disagreement(monkeypatch, perturb):
    layer = ODConv2d(8, 16, 3, padding=1, kernel_num=4)
    x = torch.randn(2, 8, 7, 7)
    ok = bench.check_module('odconv', layer, x)
    assert ok['output_rel_err'] < 1e-5 and ok['grad_rel_err'] < 1e-4
    monkeypatch.setattr(reference, 'batch_folded_conv2d',
                        _perturbed(**perturb))
    with pytest.raises(bench.ExactnessError, match='odconv'):
        bench.check_module('odconv', layer, x)


def test_check_inference_catches_disagreement(monkeypatch):
    layer = ODConv2d(8, 16, 3, padding=1, kernel_num=4)
    x = torch.randn(1, 8, 7, 7)
    ok = bench.check_inference('odconv', layer, x)
    assert ok['mode'] == 'infer' and ok['output_rel_err'] < 1e-5
    assert not layer.training
    monkeypatch.setattr(reference, 'batch_folded_conv2d',
                        _perturbed(scale_out=1 + 1e-4))
    with pytest.raises(bench.ExactnessError, match='odconv inference'):
        bench.check_inference('odconv', layer, x)


def test_released_formulation_swaps_forward_and_restores_it(monkeypatch):
    calls = []
    original = reference.batch_folded_conv2d

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(reference, 'batch_folded_conv2d', spy)
    layer = ODConv2d(8, 16, 3, padding=1, kernel_num=4).eval()
    model = nn.Sequential(nn.Conv2d(8, 8, 1), layer)
    x = torch.randn(2, 8, 7, 7)
    with torch.no_grad():
        ours = model(x)
        assert not calls
        with reference.released_formulation(model):
            assert 'forward' in vars(layer)
            released = model(x)
        assert len(calls) == 1
        assert 'forward' not in vars(layer)
        assert torch.equal(model(x), ours) and len(calls) == 1
    assert (released - ours).abs().max() <= 1e-5 * ours.abs().max()
    # restored when the body raises, and around an instance forward
    marker = layer.forward
    layer.forward = marker
    with pytest.raises(RuntimeError, match='body'):
        with reference.released_formulation(model):
            assert layer.forward is not marker
            raise RuntimeError('body')
    assert vars(layer)['forward'] is marker


class _GatedConv2d(DynamicConv2d):
    """A family with its own forward: a kernel gated per output channel."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = nn.Linear(self.in_channels, self.out_channels)
        self.init_weights()

    def forward(self, x):
        gate = torch.sigmoid(self.gate(x.mean((2, 3))))[..., None, None]
        return torch.conv2d(x, self.weight[0], None, self.stride,
                            self.padding) * gate


def test_exactness_check_uses_a_registered_reference():
    layer = _GatedConv2d(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 5, 5)
    assert not reference.has_reference(layer)
    with pytest.raises(ValueError, match='register_reference'):
        with reference.released_formulation(layer):
            pass

    def correct(self, x):
        gate = torch.sigmoid(self.gate(x.mean((2, 3))))
        return reference.batch_folded_conv2d(
            x, self.weight, None, self.stride, self.padding, out_attn=gate)

    reference.register_reference(_GatedConv2d)(correct)
    assert reference.has_reference(nn.Sequential(layer))
    assert bench.check_module('gated', layer, x)['grad_rel_err'] < 1e-4

    def broken(self, x):
        return correct(self, x) * (1 + 1e-3)

    reference.register_reference(_GatedConv2d)(broken)
    with pytest.raises(bench.ExactnessError, match='gated output'):
        bench.check_module('gated', layer, x)
    with pytest.raises(bench.ExactnessError, match='gated inference'):
        bench.check_inference('gated', layer, x[:1])


def test_main_aborts_before_timing(monkeypatch, capsys):
    monkeypatch.setattr(reference, 'batch_folded_conv2d',
                        _perturbed(scale_out=1.001))
    assert bench.main(['--quick', '--only', 'layers'] + FAST) == 1
    out = capsys.readouterr().out
    assert 'EXACTNESS CHECK FAILED' in out
    assert '## Layers' not in out


def test_rounds_are_interleaved_abba():
    calls = []
    steps = {
        key: bench.Step(lambda key=key: calls.append(key))
        for key in 'abc'
    }
    res, peaks = bench.run_interleaved(steps, 3, torch.device('cpu'), False)
    # one warm-up pass each, then rounds in alternating order
    assert ''.join(calls) == 'abc' + 'abc' + 'cba' + 'abc'
    assert not peaks and set(res) == set('abc')
    for timing in res.values():
        assert len(timing['runs_ms']) == 3
        assert timing['median_ms'] == sorted(timing['runs_ms'])[1]


def _table(text, title):
    block = text.split(title, 1)[1].strip().split('\n\n')[0]
    return [line for line in block.splitlines() if line.startswith('|')]


def _cells(row):
    return [c.strip() for c in row.strip('|').split('|')]


def test_quick_run_format(tmp_path, capsys):
    out_json = tmp_path / 'bench.json'
    threads = torch.get_num_threads()
    assert bench.main(
        ['--quick', '--only', 'layers', 'backbones', '--json',
         str(out_json)] + FAST) == 0
    assert torch.get_num_threads() == threads
    out = capsys.readouterr().out
    assert out.startswith('# Dynamic convolution benchmark')
    kinds = bench.layer_kinds()
    presets = {
        s.name: bench.dynamic_presets(s.cfg)
        for s in bench.QUICK_BACKBONES
    }
    num_layers = 2  # the quick layer shapes
    m = re.search(
        r'exactness \(ours vs released\): PASSED on (\d+) modules '
        r'\((\d+) checks: training and inference\)', out)
    # layers + backbones, each checked for training and for inference
    assert m and int(m.group(1)) == num_layers * len(kinds) + sum(
        map(len, presets.values()))
    assert int(m.group(2)) == 2 * int(m.group(1))
    for mode in ('train (batch 2)', 'infer (batch 1)'):
        rows = _table(out, f'## Layers, {mode}, ms')
        assert rows[0].startswith('| layer | shape | type | static ms |')
        assert len(rows) == 2 + num_layers * len(kinds)
        for row in rows[2:]:
            cells = _cells(row)
            assert cells[2] in kinds
            # ms with one decimal (a tiny layer may read 0.0), ratios > 0
            assert all(float(c) >= 0 for c in cells[3:6])
            assert all(float(c) > 0 for c in cells[6:9])
    rows = _table(out, '## Backbones, 32x32, ms')
    assert rows[0].startswith('| backbone | preset | mode (batch) |')
    assert len(rows) == 2 + 2 * sum(map(len, presets.values()))
    for row in rows[2:]:
        cells = _cells(row)
        assert cells[1] in presets[cells[0]]
        assert cells[2] in ('train (2)', 'infer (1)')
        assert all(float(c) > 0 for c in cells[6:9])  # the three ratios
        mem = [float(v) for v in cells[9].split(' / ')]
        assert len(mem) == 3 and all(v >= 0 for v in mem)
    results = json.loads(out_json.read_text())
    assert len(results['checks']) == int(m.group(2))
    assert {c['dtype'] for c in results['checks']} == {'float32', 'float64'}
    assert {c['mode'] for c in results['checks']} == {'train', 'infer'}
    assert len(results['layers']) == 2 * num_layers * len(kinds)
    for row in results['layers'] + results['backbones']:
        assert set(row['times']) == set(bench.IMPLS)
        assert all(t['median_ms'] > 0 for t in row['times'].values())
    assert len(results['backbones']) == len(rows) - 2
    assert results['meta']['threads'] == 1


GATE_MODULE = '''
import torch
from mmengine.registry import MODELS

from dynconv_mmdet.models.layers import DynamicConv2d


@MODELS.register_module(name='{name}')
class GateConv2d(DynamicConv2d):
    """A third-party family with its own forward and no reference."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = torch.nn.Linear(self.in_channels, self.out_channels)
        self.init_weights()

    def forward(self, x):
        gate = torch.sigmoid(self.gate(x.mean((2, 3))))[..., None, None]
        return torch.conv2d(x, self.weight[0], None, self.stride,
                            self.padding, self.dilation, self.groups) * gate
'''


def test_third_party_family_from_custom_imports(tmp_path, monkeypatch, capsys):
    tag = uuid.uuid4().hex[:8]
    name, module = f'BenchGateConv2d{tag}', f'bench_gate_{tag}'
    (tmp_path / f'{module}.py').write_text(GATE_MODULE.format(name=name))
    monkeypatch.syspath_prepend(str(tmp_path))
    layout = f"dict(conv_cfg=dict(type='{name}'), stages=(False,)*2+(True,)*2)"
    out_json = tmp_path / 'bench.json'
    assert bench.main([
        '--quick', '--only', 'layers', 'backbones', '--presets', 'odconv1x',
        '--custom-imports', module, '--dynamic', layout, '--no-memory',
        '--json',
        str(out_json)
    ] + FAST) == 0
    out = capsys.readouterr().out
    # the conv of the user's module is placed where the layout says
    assert re.search(
        r'no released formulation .*ResNet-18 w16 custom '
        r'\(GateConv2d\)', out)
    assert 'note: the custom layout does not fit MobileNetV2 0.5' in out
    assert 'exactness (ours vs released): PASSED' in out
    custom = 0
    for title, kind_at in (('## Layers, train (batch 2), ms', 2),
                           ('## Backbones, 32x32, ms', 1)):
        for cells in map(_cells, _table(out, title)[2:]):
            if cells[kind_at] == bench.CUSTOM:
                custom += 1
                # released ms, ours/released, released/static
                assert [cells[i] for i in (4, 7, 8)] == ['-'] * 3
                float(cells[6])
            else:
                assert '-' not in cells[3:9]
    # two layer shapes + ResNet-18 train and infer; MobileNetV2 takes 7
    # stages and is left out
    assert custom == 4
    results = json.loads(out_json.read_text())
    for row in results['layers'] + results['backbones']:
        kind = row.get('kind', row.get('preset'))
        expected = {'static', 'ours'} | (
            set() if kind == bench.CUSTOM else {'released'})
        assert set(row['times']) == expected
        assert all(t['median_ms'] > 0 for t in row['times'].values())
    rows = [r for r in results['backbones'] if r['preset'] == bench.CUSTOM]
    assert {r['backbone'] for r in rows} == {'ResNet-18 w16'}
    assert name in results['meta']['layouts'][bench.CUSTOM]


def test_bad_command_lines(capsys):
    text = "dict(conv_cfg=dict(type='X', k=-1), stages=(True,)*2+(False,))"
    layout = dict(conv_cfg=dict(type='X', k=-1), stages=(True, True, False))
    # a bare dict (the custom row) or NAME=DICT, as the complexity tool
    assert bench.parse_layout(text) == (bench.CUSTOM, layout)
    assert bench.parse_layout(f'foo={text}') == ('foo', layout)
    for text in ("__import__('os')", 'dict(stages=(True,)*4)', 'dict(a=1'):
        with pytest.raises(ValueError, match='--dynamic'):
            bench.parse_layout(text)
    with pytest.raises(SystemExit):
        bench.parse_args(['--dynamic', 'a=dict(conv_cfg=dict(type="X"))'] * 2)
    assert bench.main([
        '--quick', '--only', 'layers', '--dynamic',
        "odconv1x=dict(conv_cfg=dict(type='ODConv2d'))"
    ]) == 2
    assert 'are presets' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(['--dynamic', 'open("x")'])
    assert bench.main(['--quick', '--only', 'layers', '--presets',
                       'nope']) == 2
    assert "unknown ['nope']" in capsys.readouterr().err
    assert bench.main(['--quick', '--only', 'backbones', '--backbones',
                       'X']) == 2
    assert 'ResNet-18 w16' in capsys.readouterr().err
    assert bench.main(
        ['--quick', '--only', 'layers', '--custom-imports',
         'no_such_mod']) == 2
    assert 'no_such_mod' in capsys.readouterr().err


def test_detector_pairs_from_the_configs(tmp_path):
    groups, notes = detectors.select(
        CONFIG_DIR,
        ['odconv_faster_rcnn_r50_fpn_1x', 'dcn_faster_rcnn_r50_fpn_1x.py'])
    assert not notes
    (base, configs), = groups.values()
    assert base.name == 'faster_rcnn_r50_fpn_1x' and base.sizes == (800, )
    assert [c.name for c in configs] == [
        'dcn_faster_rcnn_r50_fpn_1x', 'odconv_faster_rcnn_r50_fpn_1x'
    ]
    # without a metafile: every config of the folder; Mask R-CNN only when
    # named; a dynamic config without a static twin is noted
    for name in ('faster_rcnn_mbv2_fpn_1x', 'odconv_faster_rcnn_mbv2_fpn_1x',
                 'odconv_mask_rcnn_mbv2_fpn_1x'):
        (tmp_path / f'{name}.py'
         ).write_text(f"_base_ = {osp.join(CONFIG_DIR, name + '.py')!r}\n")
    groups, notes = detectors.select(str(tmp_path))
    assert [(b.name, [c.name for c in cs]) for b, cs in groups.values()] == [
        ('faster_rcnn_mbv2_fpn_1x', ['odconv_faster_rcnn_mbv2_fpn_1x'])
    ]
    assert not notes
    groups, notes = detectors.select(str(tmp_path), ['*mask*'])
    assert not groups and notes == [
        'odconv_mask_rcnn_mbv2_fpn_1x: no static config of the same '
        'detector; not timed'
    ]


TINY_STATIC = '''
_base_ = {base!r}
model = dict(
    backbone=dict(widen_factor=0.125),
    neck=dict(in_channels=[32, 64, 128], out_channels=32),
    bbox_head=dict(in_channels=32, feat_channels=32))
'''


def _tiny_configs(root):
    """A metafile with a tiny YOLOX (static and ODConv 1x) and a config the
    metafile does not list."""
    configs = root / 'configs'
    configs.mkdir()
    base = osp.join(CONFIG_DIR, 'yolox_s_8xb8-300e_coco.py')
    (configs / 'tiny_yolox.py').write_text(TINY_STATIC.format(base=base))
    (configs / 'odconv_tiny_yolox.py').write_text(
        "_base_ = './tiny_yolox.py'\n"
        "model = dict(backbone=dict(preset='odconv1x'))\n")
    (configs / 'odconv4x_tiny_yolox.py').write_text(
        "_base_ = './tiny_yolox.py'\n"
        "model = dict(backbone=dict(preset='odconv4x'))\n")
    (configs / 'metafile.yml').write_text(
        textwrap.dedent('''\
        Models:
          - Name: tiny_yolox
            Config: configs/tiny_yolox.py
          - Name: odconv_tiny_yolox
            Config: configs/odconv_tiny_yolox.py
        '''))
    return configs


def test_gpu_subset_quick_covers_compiled_and_detectors(tmp_path, capsys):
    out_json = tmp_path / 'bench.json'
    assert bench.main([
        '--quick', '--gpu-subset', '--device', 'cpu', '--backbones',
        'ResNet-18 w16', '--presets', 'odconv1x', '--compile-backend',
        'aot_eager', '--config-dir',
        str(_tiny_configs(tmp_path)), '--json',
        str(out_json)
    ] + FAST) == 0
    out = capsys.readouterr().out
    assert '## Layers' not in out
    assert len(_table(out, '## Backbones, 32x32, ms')) == 2 + 2
    assert re.search(
        r'exactness \(compiled vs eager\): PASSED on 2 modules '
        r'\(2 checks: inference\)', out)
    rows = _table(
        out, '## Compiled backbones (torch.compile, backend '
        'aot_eager), infer (batch 1), ms')
    assert rows[0].startswith('| backbone | input | preset | static ms |')
    cells, = map(_cells, rows[2:])
    assert cells[:3] == ['ResNet-18 w16', '32x32', 'odconv1x']
    assert all(float(c) > 0 for c in cells[3:6])
    assert all(float(s) > 0 for s in cells[6].split(' / '))
    rows = _table(out, '## Detectors, ms')
    assert rows[0].startswith('| config | baseline | input | mode (batch) |')
    # one-stage: training at the first size, inference at both; the
    # config the metafile does not list is not timed
    assert [c[:4] for c in map(_cells, rows[2:])] == [
        ['odconv_tiny_yolox', 'tiny_yolox', '128x128', 'train (2)'],
        ['odconv_tiny_yolox', 'tiny_yolox', '128x128', 'infer (1)'],
        ['odconv_tiny_yolox', 'tiny_yolox', '64x64', 'infer (1)'],
    ]
    for cells in map(_cells, rows[2:]):
        assert all(float(c) > 0 for c in cells[4:7])
        assert len(cells[7].split(' / ')) == 2
    results = json.loads(out_json.read_text())
    assert results['meta']['parts'] == ['backbones', 'compiled', 'detectors']
    names = {c['name'] for c in results['checks']}
    assert 'odconv_tiny_yolox' in names
    assert {c['mode'] for c in results['compiled_checks']} == {'compiled'}
