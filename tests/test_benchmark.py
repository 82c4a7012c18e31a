"""tools/analysis_tools/benchmark_dynconv.py: output format and the
exactness check that guards every timing."""
import importlib.util
import json
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

import dynconv_mmdet.models.layers.functional as functional
from dynconv_mmdet.models.layers import ODConv2d

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCRIPT = osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark_dynconv.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_dynconv', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_tool()


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
    original = functional.batch_folded_conv2d

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
    monkeypatch.setattr(functional, 'batch_folded_conv2d',
                        _perturbed(**perturb))
    with pytest.raises(bench.ExactnessError, match='odconv'):
        bench.check_module('odconv', layer, x)


def test_check_inference_catches_disagreement(monkeypatch):
    layer = ODConv2d(8, 16, 3, padding=1, kernel_num=4)
    x = torch.randn(1, 8, 7, 7)
    ok = bench.check_inference('odconv', layer, x)
    assert ok['mode'] == 'infer' and ok['output_rel_err'] < 1e-5
    assert not layer.training
    monkeypatch.setattr(functional, 'batch_folded_conv2d',
                        _perturbed(scale_out=1 + 1e-4))
    with pytest.raises(bench.ExactnessError, match='odconv inference'):
        bench.check_inference('odconv', layer, x)


def test_main_aborts_before_timing(monkeypatch, capsys):
    monkeypatch.setattr(functional, 'batch_folded_conv2d',
                        _perturbed(scale_out=1.001))
    assert bench.main(['--quick', '--only', 'layers', '--repeats', '1']) == 1
    out = capsys.readouterr().out
    assert 'EXACTNESS CHECK FAILED' in out
    assert '## Layers' not in out


def _table(text, title):
    block = text.split(title, 1)[1].strip().split('\n\n')[0]
    return [line for line in block.splitlines() if line.startswith('|')]


def test_quick_run_format(tmp_path):
    out_json = tmp_path / 'bench.json'
    proc = subprocess.run([
        sys.executable, SCRIPT, '--quick', '--repeats', '1', '--threads', '1',
        '--json',
        str(out_json)
    ],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.startswith('# Dynamic convolution benchmark')
    m = re.search(
        r'exactness \(ours vs released\): PASSED on (\d+) modules '
        r'\((\d+) checks: training and inference\)', out)
    # layers + backbones, each checked for training and for inference
    assert m and int(m.group(1)) == 2 * 4 + 2 * 4
    assert int(m.group(2)) == 2 * int(m.group(1))
    for mode in ('train (batch 2)', 'infer (batch 1)'):
        rows = _table(out, f'## Layers, {mode}, ms')
        assert rows[0].startswith('| layer | shape | type | static ms |')
        assert len(rows) == 2 + 2 * 4  # header, rule, 2 shapes x 4 kinds
        for row in rows[2:]:
            cells = [c.strip() for c in row.strip('|').split('|')]
            assert cells[2] in bench.LAYER_TYPES
            assert all(float(c) > 0 for c in cells[3:9])
    rows = _table(out, '## Backbones, 32x32, ms')
    assert rows[0].startswith('| backbone | preset | mode (batch) |')
    assert len(rows) == 2 + 2 * 4 * 2
    for row in rows[2:]:
        cells = [c.strip() for c in row.strip('|').split('|')]
        assert cells[1] in bench.PRESETS
        assert cells[2] in ('train (2)', 'infer (1)')
        assert all(float(c) > 0 for c in cells[6:9])  # the three ratios
        mem = [float(v) for v in cells[9].split(' / ')]
        assert len(mem) == 3 and all(v >= 0 for v in mem)
    results = json.loads(out_json.read_text())
    assert len(results['checks']) == 32
    assert {c['dtype'] for c in results['checks']} == {'float32', 'float64'}
    assert {c['mode'] for c in results['checks']} == {'train', 'infer'}
    assert len(results['layers']) == 16 and len(results['backbones']) == 16
    assert results['meta']['threads'] == 1
