"""dynconv_mmdet.analysis.benchmark.command (tools/analysis_tools/
benchmark_dynconv.py): the command line, its errors and exit statuses."""
import importlib

import pytest

from dynconv_mmdet.analysis import benchmark as bench
from dynconv_mmdet.analysis import reference

FAST = ['--repeats', '1', '--train-repeats', '1', '--threads', '1']


def test_tool_is_the_package_command_line():
    tool = importlib.import_module('tools.analysis_tools.benchmark_dynconv')
    assert tool.main is bench.main


def test_main_aborts_before_timing(monkeypatch, perturbed, capsys):
    monkeypatch.setattr(reference, 'batch_folded_conv2d',
                        perturbed(scale_out=1.001))
    assert bench.main(['--quick', '--only', 'layers'] + FAST) == 1
    out = capsys.readouterr().out
    assert 'EXACTNESS CHECK FAILED' in out
    assert '## Layers' not in out


def test_bad_command_lines(capsys):
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
