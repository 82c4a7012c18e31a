# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""``configs/metafile.yml`` (OpenMMLab's model-index format) against the
configs, the built backbones, mmdet's own model zoo, the README's model-zoo
table and the wheel that ships it to ``mim``.

Every list here derives from the metafile: a new config is one metafile
entry and one README row.
"""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile
from typing import Dict, List, Tuple

import pytest
import torch
import yaml
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METAFILE = osp.join(REPO, 'configs', 'metafile.yml')
MODEL_INDEX = osp.join(REPO, 'model-index.yml')
README = osp.join(REPO, 'README.md')
# configs/ folders that hold no model of the zoo
NOT_ZOO = ('_base_', 'toy', 'deploy')
ZOO_HEADING = '## Model zoo'
ZOO_HEADER = ['config', 'backbone params', 'box AP', 'mask AP', 'source']
NONE = '—'
# Detection backbones (no classifier) counted with the official code
# (FACTS.md): the metafile's counts for these (backbone, preset) pairs.
OFFICIAL_BACKBONE_PARAMS = {
    ('ResNet-50', 'static'): 23_508_032,
    ('ResNet-50', 'odconv1x'): 26_586_112,
    ('ResNet-50', 'odconv4x'): 88_621_888,
    ('MobileNetV2 1.0', 'static'): 2_223_872,
    ('MobileNetV2 1.0', 'odconv1x'): 3_659_185,
    ('MobileNetV2 1.0', 'odconv4x'): 10_231_149,
    ('ResNet-50', 'fdconv'): 27_155_152,  # FDConv release: + 3,647,120
}
# Extra parameters over ResNet-50 (ODConv paper, Table 4; one decimal).
PAPER_R50_EXTRA_PARAMS = {'condconv8x': 90.0e6, 'dyconv4x': 75.3e6}


def _kw_release_params() -> Dict[Tuple[str, str], int]:
    """KernelWarehouse: the release's ImageNet models built with its own
    code (``tests/data/kernel_warehouse/backbones.json``) less their
    classifier, per (metafile backbone, preset)."""
    with open(
            osp.join(REPO, 'tests', 'data', 'kernel_warehouse',
                     'backbones.json'),
            encoding='utf-8') as f:
        release = json.load(f)
    counts = {}
    for backbone, (family, size) in {
            'ResNet-50': ('resnet', '50'),
            'MobileNetV2 1.0': ('mobilenet_v2', '1.0')
    }.items():
        for key, model in release[family].items():
            model_size, preset = key.split('_', 1)
            if model_size == size:
                counts[(backbone,
                        preset)] = model['params'] - model['classifier']
    return counts


OFFICIAL_BACKBONE_PARAMS.update(_kw_release_params())


def _load_yaml(path: str) -> dict:
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)


METADATA = _load_yaml(METAFILE)
MODELS = METADATA['Models']
IDS = [m['Name'] for m in MODELS]


def _results(model: dict) -> Dict[str, float]:
    merged: Dict[str, float] = {}
    for result in model.get('Results') or []:
        merged.update(result['Metrics'])
    return merged


def _ap_cell(model: dict, metric: str) -> str:
    value = _results(model).get(metric)
    cell = NONE if value is None else f'{value:.1f}'
    notes = []
    gain = (model.get('Published Gain') or {}).get(metric)
    if gain is not None:
        notes.append(f'{gain:+.1f} over baseline')
    for other in model.get('Also Published') or []:
        if metric in other:
            notes.append(f'{other["Source"]}: {other[metric]:.1f}')
    return cell + (f' ({"; ".join(notes)})' if notes else '')


def render_row(model: dict) -> List[str]:
    """The README row of ``model``: see the model-zoo section."""
    params = model['Metadata']['Backbone Parameters']
    return [
        f'`{osp.basename(model["Config"])}`', f'{params / 1e6:.2f}M',
        _ap_cell(model, 'box AP'),
        _ap_cell(model, 'mask AP'),
        model.get('Source', NONE)
    ]


def _readme_zoo_section() -> str:
    with open(README, encoding='utf-8') as f:
        text = f.read()
    assert ZOO_HEADING in text, f'README.md has no "{ZOO_HEADING}" section'
    start = text.index(ZOO_HEADING)
    end = text.find('\n## ', start + len(ZOO_HEADING))
    return text[start:] if end < 0 else text[start:end]


def _readme_zoo_table() -> List[List[str]]:
    """Rows of the first table of the model-zoo section, header first."""
    rows = []
    for line in _readme_zoo_section().splitlines():
        if not line.startswith('|'):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if not all(set(c) <= set(':-') and c for c in cells):
            rows.append(cells)
    return rows


def test_every_config_is_listed_once():
    on_disk = {
        osp.relpath(p, REPO)
        for p in glob.glob(
            osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
        if osp.relpath(p, osp.join(REPO, 'configs')).split(os.sep)[0] not in
        NOT_ZOO
    }
    listed = [m['Config'] for m in MODELS]
    assert len(listed) == len(set(listed)), 'a config is listed twice'
    assert set(listed) == on_disk, (
        f'configs missing from configs/metafile.yml: '
        f'{sorted(on_disk - set(listed))}; listed but absent: '
        f'{sorted(set(listed) - on_disk)}')
    for model in MODELS:
        # mmdet's convention: the name is the config's file name
        assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]


def test_model_index_reader_keeps_every_model():
    """The reader behind ``mim search`` loads the root model-index.yml
    without errors and sees every model with its collection and results."""
    from modelindex.load_model_index import load
    assert _load_yaml(MODEL_INDEX) == {'Import': ['configs/metafile.yml']}
    index = load(MODEL_INDEX)
    assert not index.check(silent=True)
    collections = {c.name for c in index.collections}
    assert {c['Name'] for c in METADATA['Collections']} == collections
    assert [m.name for m in index.models] == IDS
    for model, raw in zip(index.models, MODELS):
        assert model.in_collection in collections
        assert model.config == raw['Config']
        got = {(r.task, r.dataset, tuple(sorted(r.metrics.items())))
               for r in model.results or []}
        want = {(r['Task'], r['Dataset'], tuple(sorted(r['Metrics'].items())))
                for r in raw.get('Results') or []}
        assert got == want


@pytest.mark.parametrize('model', MODELS, ids=IDS)
def test_results_and_sources(model):
    results = model.get('Results') or []
    for result in results:
        assert result['Dataset'] == 'COCO'
        metric = {
            'Object Detection': 'box AP',
            'Instance Segmentation': 'mask AP'
        }[result['Task']]
        assert list(result['Metrics']) == [metric]
    published = results or model.get('Published Gain')
    # a published number names its source; no number, no source
    assert bool(model.get('Source')) == bool(published), model['Name']
    assert bool(model.get('Source Model')) == (model.get('Source') == 'mmdet')
    for other in model.get('Also Published') or []:
        assert other['Source'] != model['Source']
        assert set(other) - {'Source'} <= {'box AP', 'mask AP'}
    sources = [o['Source'] for o in model.get('Also Published') or []]
    if model.get('Source'):
        sources.append(model['Source'])
    section = _readme_zoo_section()
    for source in sources:
        assert f'**{source}**' in section, (
            f'the README model zoo does not describe the source {source!r}')


def _mmdet_models() -> Dict[str, dict]:
    import mmdet
    pattern = osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'configs', '*', 'metafile.yml')
    models = {}
    for path in glob.glob(pattern):
        data = _load_yaml(path)
        entries = data.get('Models') if isinstance(data, dict) else data
        for model in entries or []:
            models[model['Name']] = model
    return models


def test_mmdet_numbers_are_mmdet_model_zoo_numbers():
    mmdet_models = _mmdet_models()
    ours = [m for m in MODELS if m.get('Source') == 'mmdet']
    assert ours
    for model in ours:
        theirs = mmdet_models[model['Source Model']]
        assert _results(model) == _results(theirs), model['Name']
        assert model['Metadata']['Epochs'] == theirs['Metadata']['Epochs']


def test_paper_gains_add_up():
    """Where the ODConv paper states a gain and the number, the number is
    the paper's own baseline plus the gain."""
    baselines = {}
    for model in MODELS:
        for other in model.get('Also Published') or []:
            if other['Source'] == 'ODConv paper' and 'box AP' in other:
                meta = model['Metadata']
                baselines[meta['Detector'], meta['Backbone']] = other['box AP']
    checked = 0
    for model in MODELS:
        gain = (model.get('Published Gain') or {}).get('box AP')
        box = _results(model).get('box AP')
        if gain is None or box is None:
            continue
        meta = model['Metadata']
        baseline = baselines[meta['Detector'], meta['Backbone']]
        assert box == pytest.approx(baseline + gain, abs=1e-6), model['Name']
        checked += 1
    assert checked


def test_readme_zoo_table_agrees_with_the_metafile():
    table = _readme_zoo_table()
    assert table and table[0] == ZOO_HEADER
    rows = {row[0]: row for row in table[1:]}
    assert len(rows) == len(table) - 1, 'a config has two README rows'
    expected = {render_row(m)[0]: render_row(m) for m in MODELS}
    assert set(rows) == set(expected), (
        f'missing from the README: {sorted(set(expected) - set(rows))}; '
        f'not in the metafile: {sorted(set(rows) - set(expected))}')
    for key, row in expected.items():
        assert rows[key] == row


@pytest.fixture(scope='module')
def _registries():
    from mmdet.utils import register_all_modules

    import dynconv_mmdet  # noqa: F401
    register_all_modules(init_default_scope=True)


@pytest.mark.parametrize('model', MODELS, ids=IDS)
def test_backbone_parameters(model, _registries):
    """The metafile's counts are those of the backbones the configs build
    (on the meta device: shapes only), and the official ones where the
    official code pins them."""
    from mmdet.registry import MODELS as REGISTRY
    cfg = Config.fromfile(osp.join(REPO, model['Config']))
    meta = model['Metadata']
    assert cfg.model.backbone.get('preset',
                                  'static') == meta['Backbone Preset']
    with torch.device('meta'):
        backbone = REGISTRY.build(cfg.model.backbone)
    built = sum(p.numel() for p in backbone.parameters())
    assert meta['Backbone Parameters'] == built
    key = (meta['Backbone'], meta['Backbone Preset'])
    if key in OFFICIAL_BACKBONE_PARAMS and 'Backbone DCN' not in meta:
        assert built == OFFICIAL_BACKBONE_PARAMS[key]
    if meta['Backbone'] == 'ResNet-50' and key[1] in PAPER_R50_EXTRA_PARAMS:
        extra = built - OFFICIAL_BACKBONE_PARAMS[('ResNet-50', 'static')]
        assert abs(extra - PAPER_R50_EXTRA_PARAMS[key[1]]) < 0.05e6, extra


def test_wheel_ships_configs_tools_and_model_index(tmp_path):
    """A wheel carries ``dynconv_mmdet/.mim/`` (what ``mim search`` and
    mmengine's ``dynconv_mmdet::`` paths read), as OpenMMLab packages do,
    and nothing outside the package."""
    src = tmp_path / 'src'
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim',
                                    '*.egg-info')
    for name in ('dynconv_mmdet', 'configs', 'tools'):
        shutil.copytree(osp.join(REPO, name), src / name, ignore=ignore)
    for name in ('setup.py', 'setup.cfg', 'MANIFEST.in', 'README.md',
                 'LICENSE', 'model-index.yml'):
        shutil.copy(osp.join(REPO, name), src / name)
    out = tmp_path / 'dist'
    proc = subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '--no-index', '--disable-pip-version-check',
        '-q', '-w',
        str(out),
        str(src)
    ],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel, ) = out.glob('dynconv_mmdet-*.whl')
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / 'installed')
    assert all(n.startswith('dynconv_mmdet') for n in names), sorted(
        n for n in names if not n.startswith('dynconv_mmdet'))
    mim = 'dynconv_mmdet/.mim/'
    wanted = {mim + 'model-index.yml', mim + 'configs/metafile.yml'}
    wanted |= {mim + m['Config'] for m in MODELS}
    wanted |= {
        mim + osp.relpath(p, REPO)
        for p in glob.glob(
            osp.join(REPO, 'tools', '**', '*.py'), recursive=True)
    }
    assert wanted <= names, sorted(wanted - names)
    from modelindex.load_model_index import load
    index = load(str(tmp_path / 'installed' / mim / 'model-index.yml'))
    assert [m.name for m in index.models] == IDS
