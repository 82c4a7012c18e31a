# Copyright (c) dynconv-mmdet contributors. All rights reserved.
import importlib
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load_tool():
    return importlib.import_module('tools.analysis_tools.gather_results')


gather = _load_tool()


def _metrics(task, ap, ap_s=0.1):
    return {
        f'coco/{task}_mAP': ap,
        f'coco/{task}_mAP_50': ap + 0.2,
        f'coco/{task}_mAP_75': ap + 0.05,
        f'coco/{task}_mAP_s': ap_s,
        f'coco/{task}_mAP_m': ap + 0.01,
        f'coco/{task}_mAP_l': ap + 0.1,
    }


def _write(path, obj):
    with open(path, 'w') as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


@pytest.fixture
def runs(tmp_path):
    faster = _write(
        tmp_path / 'faster.json',
        dict(
            config='configs/faster_rcnn_r50_fpn_1x.py',
            checkpoint='work_dirs/a/epoch_12.pth',
            metrics=dict(
                _metrics('bbox', 0.374), **{
                    'coco/extra': 1.0,
                    'coco/bbox_mAP_copypaste': '0.374 0.574'
                }),
            params=41_750_000,
            flops=2.07e11))
    run_dir = tmp_path / 'work_dirs' / 'mask_od'
    run_dir.mkdir(parents=True)
    mask = dict(
        config='configs/odconv4x_mask_rcnn_r50_fpn_1x.py',
        checkpoint='work_dirs/b/epoch_12.pth',
        metrics=dict(_metrics('bbox', 0.402), **_metrics('segm', 0.361)),
        params=111_560_000)
    mask['metrics']['coco/segm_mAP_s'] = -1.0  # undefined in COCO
    _write(run_dir / 'metrics.json', mask)
    return faster, str(tmp_path / 'work_dirs')


def test_table_content(runs):
    table = gather.make_table(gather.load_runs(list(runs)))
    lines = table.strip().splitlines()
    assert lines[0] == ('| Model | Task | AP | AP50 | AP75 | AP_S | AP_M | '
                        'AP_L | Params (M) | FLOPs (G) |')
    assert len(lines) == 2 + 3  # header, rule, faster bbox, mask bbox+segm
    assert lines[2] == ('| faster_rcnn_r50_fpn_1x | bbox | 37.4 | 57.4 | '
                        '42.4 | 10.0 | 38.4 | 47.4 | 41.75 | 207.0 |')
    assert lines[3] == ('| odconv4x_mask_rcnn_r50_fpn_1x | bbox | 40.2 | '
                        '60.2 | 45.2 | 10.0 | 41.2 | 50.2 | 111.56 | - |')
    assert lines[4] == ('| odconv4x_mask_rcnn_r50_fpn_1x | segm | 36.1 | '
                        '56.1 | 41.1 | - | 37.1 | 46.1 | 111.56 | - |')


def test_cli_writes_markdown_and_pngs(runs, tmp_path):
    out_md = tmp_path / 'out' / 'results.md'
    png_dir = tmp_path / 'png'
    ret = gather.main([
        *runs, '--out-md',
        str(out_md), '--out-png-dir',
        str(png_dir), '--names', 'baseline', 'odconv'
    ])
    assert ret == 0
    text = out_md.read_text()
    assert '| baseline | bbox | 37.4 |' in text
    assert '| odconv | segm | 36.1 |' in text
    for stem in ('ap', 'ap_small', 'ap_medium', 'ap_large'):
        path = png_dir / f'{stem}.png'
        assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
        with Image.open(path) as img:
            img.load()
            assert img.format == 'PNG'
            assert img.width > 100 and img.height > 100
            # not a blank canvas: bars in several colours were drawn
            pixels = np.asarray(img.convert('RGB')).reshape(-1, 3)
            assert len(np.unique(pixels, axis=0)) > 10


def test_duplicate_names_are_disambiguated(runs):
    loaded = gather.load_runs([runs[0], runs[0]])
    assert [r['name'] for r in loaded
            ] == ['faster_rcnn_r50_fpn_1x', 'faster_rcnn_r50_fpn_1x #2']


@pytest.mark.parametrize('content, message', [
    ('{"config": "a.py", "metrics": {', 'invalid JSON'),
    ('[1, 2]', 'expected a JSON object'),
    ('{"config": "a.py", "metrics": {}}', 'missing field(s) checkpoint'),
    (json.dumps(dict(config='a.py', checkpoint='c', metrics={},
                     params=1)), 'no COCO bbox metrics'),
    (json.dumps(
        dict(
            config='a.py',
            checkpoint='c',
            metrics={'coco/bbox_mAP': 0.3},
            params=1)), 'incomplete bbox metrics'),
    (json.dumps(
        dict(
            config='a.py',
            checkpoint='c',
            metrics=dict(_metrics('bbox', 0.3), **{'coco/bbox_mAP': 'x'}),
            params=1)), 'non-numeric metric(s) coco/bbox_mAP'),
    (json.dumps(
        dict(
            config='a.py',
            checkpoint='c',
            metrics=_metrics('bbox', 0.3),
            params='many')), '"params" must be'),
])
def test_malformed_runs_raise(tmp_path, content, message):
    path = _write(tmp_path / 'bad.json', content)
    with pytest.raises(ValueError) as e:
        gather.load_run(path)
    assert message in str(e.value)
    assert path in str(e.value)


def test_cli_reports_errors(tmp_path, capsys):
    bad = _write(tmp_path / 'bad.json', '{"config": ')
    ret = gather.main([
        bad, '--out-md',
        str(tmp_path / 'r.md'), '--out-png-dir',
        str(tmp_path)
    ])
    assert ret == 1
    err = capsys.readouterr().err
    assert 'invalid JSON' in err and 'line 1' in err
    assert not (tmp_path / 'r.md').exists()


def test_missing_paths_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        gather.find_run_files([str(tmp_path / 'nope.json')])
    with pytest.raises(FileNotFoundError, match='No metrics.json'):
        gather.find_run_files([str(tmp_path)])
