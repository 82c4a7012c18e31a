# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""gather_results.py on inputs it must refuse or escape: AP given in
percent, NaN / infinity, a file that is not UTF-8 JSON, a ``|`` in a run's
name."""
import importlib
import json
import re

import pytest

gather = importlib.import_module('tools.analysis_tools.gather_results')


def _metrics(task: str, ap: float) -> dict:
    return {
        f'coco/{task}_mAP': ap,
        f'coco/{task}_mAP_50': ap + 0.2,
        f'coco/{task}_mAP_75': ap + 0.05,
        f'coco/{task}_mAP_s': 0.1,
        f'coco/{task}_mAP_m': ap + 0.01,
        f'coco/{task}_mAP_l': ap + 0.1,
    }


def _run(metrics: dict, **fields) -> dict:
    run = dict(
        config='configs/faster_rcnn_r50_fpn_1x.py',
        checkpoint='epoch_12.pth',
        metrics=metrics,
        params=41_750_000)
    run.update(fields)
    return run


def _write(path, run) -> str:
    # json.dumps writes NaN / Infinity as Python's json.load reads them
    path.write_text(json.dumps(run))
    return str(path)


def _cli(tmp_path, *files: str, names=None) -> int:
    argv = [
        *files, '--out-md',
        str(tmp_path / 'out' / 'r.md'), '--out-png-dir',
        str(tmp_path / 'png')
    ]
    if names:
        argv += ['--names', *names]
    return gather.main(argv)


def test_ap_in_percent_is_refused(tmp_path, capsys):
    metrics = _metrics('bbox', 0.374)
    metrics['coco/bbox_mAP'] = 37.4
    path = _write(tmp_path / 'percent.json', _run(metrics))
    with pytest.raises(ValueError) as info:
        gather.load_run(path)
    message = str(info.value)
    assert path in message and 'coco/bbox_mAP' in message
    assert 'looks like a percentage' in message and '0.374' in message

    assert _cli(tmp_path, path) == 1
    err = capsys.readouterr().err
    assert 'looks like a percentage' in err and path in err
    assert not (tmp_path / 'out' / 'r.md').exists()


@pytest.mark.parametrize('value', [1234.0, -0.5])
def test_ap_outside_the_unit_interval_is_refused(tmp_path, value):
    metrics = _metrics('bbox', 0.3)
    metrics['coco/bbox_mAP_l'] = value
    path = _write(tmp_path / 'bad.json', _run(metrics))
    with pytest.raises(
            ValueError, match=r'coco/bbox_mAP_l .*outside \[0, 1\]'):
        gather.load_run(path)


def test_undefined_ap_and_the_bounds_are_accepted(tmp_path):
    metrics = _metrics('bbox', 0.0)
    metrics.update({'coco/bbox_mAP_s': -1.0, 'coco/bbox_mAP_l': 1.0})
    run = gather.load_run(_write(tmp_path / 'ok.json', _run(metrics)))
    assert '| - |' in gather.make_table([run])
    assert '100.0' in gather.make_table([run])


@pytest.mark.parametrize('key', ['coco/bbox_mAP', 'coco/segm_mAP_75'])
@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_non_finite_ap_is_refused(tmp_path, capsys, key, value):
    metrics = dict(_metrics('bbox', 0.4), **_metrics('segm', 0.35))
    metrics[key] = value
    path = _write(tmp_path / 'nan.json', _run(metrics))
    with pytest.raises(ValueError) as info:
        gather.load_run(path)
    message = str(info.value)
    assert path in message and key in message
    assert 'not a finite number' in message

    assert _cli(tmp_path, path) == 1
    assert not (tmp_path / 'out' / 'r.md').exists()
    assert not (tmp_path / 'png').exists()


@pytest.mark.parametrize('field', ['params', 'flops'])
def test_non_finite_params_or_flops_are_refused(tmp_path, field):
    path = _write(tmp_path / 'nan.json',
                  _run(_metrics('bbox', 0.4), **{field: float('nan')}))
    with pytest.raises(ValueError, match=f'"{field}" must be a finite'):
        gather.load_run(path)


def test_file_that_is_not_utf8_is_named(tmp_path, capsys):
    path = tmp_path / 'latin1.json'
    path.write_bytes(
        json.dumps(
            _run(_metrics('bbox', 0.4), config='r\u00e9sultat.py'),
            ensure_ascii=False).encode('latin-1'))
    with pytest.raises(ValueError) as info:
        gather.load_run(str(path))
    assert str(path) in str(info.value)
    assert 'not UTF-8' in str(info.value)

    assert _cli(tmp_path, str(path)) == 1
    err = capsys.readouterr().err
    assert str(path) in err and 'not UTF-8' in err


def test_binary_file_is_named(tmp_path, capsys):
    path = tmp_path / 'metrics.pth'
    path.write_bytes(b'PK\x03\x04\x80\x81\xff\x00')
    assert _cli(tmp_path, str(path)) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and str(path) in err


def _columns(line: str) -> list:
    """The cells of a Markdown table row (``\\|`` does not split)."""
    assert line.startswith('|') and line.endswith('|')
    return re.split(r'(?<!\\)\|', line[1:-1])


def test_pipe_in_a_name_is_escaped(tmp_path):
    path = _write(tmp_path / 'run.json', _run(_metrics('bbox', 0.4)))
    assert _cli(tmp_path, path, path, names=['a|b', 'odconv | 4x']) == 0
    lines = (tmp_path / 'out' / 'r.md').read_text().strip().splitlines()
    widths = {len(_columns(line)) for line in lines}
    assert widths == {10}, lines
    assert _columns(lines[2])[0].strip() == r'a\|b'
    assert _columns(lines[3])[0].strip() == r'odconv \| 4x'


def test_markdown_cell():
    assert gather.markdown_cell('a|b') == r'a\|b'
    assert gather.markdown_cell('two\nlines') == 'two lines'
    assert gather.markdown_cell('plain') == 'plain'
