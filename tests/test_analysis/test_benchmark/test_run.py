"""dynconv_mmdet.analysis.benchmark.run: whole --quick runs, the output
of every part (layers, backbones, compiled, detectors), a third-party family
from --custom-imports and the JSON results."""
import json
import os.path as osp
import re
import textwrap
import uuid

import torch

from dynconv_mmdet.analysis import benchmark as bench

ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIG_DIR = osp.join(ROOT, 'configs')
FAST = ['--repeats', '1', '--train-repeats', '1', '--threads', '1']


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
        # baseline / released / config ms and their three ratios
        assert all(float(c) > 0 for c in cells[4:10])
        assert len(cells[10].split(' / ')) == 3
    results = json.loads(out_json.read_text())
    assert results['meta']['parts'] == ['backbones', 'compiled', 'detectors']
    names = {c['name'] for c in results['checks']}
    assert 'odconv_tiny_yolox' in names
    assert {c['mode'] for c in results['compiled_checks']} == {'compiled'}
