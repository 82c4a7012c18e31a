# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Gather the metrics of several test runs into a table and bar charts.

Each run is a JSON file written by ``tools/test.py``::

    {"config": "configs/....py", "checkpoint": "....pth",
     "metrics": {"coco/bbox_mAP": 0.374, "coco/bbox_mAP_50": ..., ...,
                 "coco/segm_mAP": ..., ...},
     "params": 41753000, "flops": 2.07e11}

``metrics`` holds the COCO numbers as MMDetection's ``CocoMetric`` reports
them (fractions in [0, 1]; -1 where COCO could not compute one); ``flops``
(optional) is a plain count of floating-point operations. A directory
argument stands for every ``metrics.json`` below it.

A file that is not UTF-8 JSON, an AP outside [0, 1] (a percentage such as
37.4) and NaN or infinity are refused with an error naming the file and the
key. A ``|`` in a run's name is escaped (``\\|``) in the Markdown table.

Example::

    python tools/analysis_tools/gather_results.py work_dirs/*/metrics.json \\
        --out-md results.md --out-png-dir results_png
"""
import argparse
import json
import math
import numbers
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Sequence

#: Table / chart columns: (column title, metric suffix after ``{task}_``).
AP_COLUMNS = (('AP', 'mAP'), ('AP50', 'mAP_50'), ('AP75', 'mAP_75'),
              ('AP_S', 'mAP_s'), ('AP_M', 'mAP_m'), ('AP_L', 'mAP_l'))
#: One PNG per AP size: (file stem, column title, metric suffix).
CHARTS = (('ap', 'AP', 'mAP'), ('ap_small', 'AP_S', 'mAP_s'),
          ('ap_medium', 'AP_M', 'mAP_m'), ('ap_large', 'AP_L', 'mAP_l'))
TASKS = ('bbox', 'segm')
_COLORS = {'bbox': '#4c72b0', 'segm': '#dd8452'}
METRICS_FILE = 'metrics.json'


def find_run_files(paths: Sequence[str]) -> List[str]:
    """Expand the command-line paths: files are kept, directories stand for
    every ``metrics.json`` below them (sorted)."""
    files = []
    for path in paths:
        if osp.isdir(path):
            found = sorted(
                osp.join(root, METRICS_FILE)
                for root, _, names in os.walk(path) if METRICS_FILE in names)
            if not found:
                raise FileNotFoundError(
                    f'No {METRICS_FILE} found under directory {path!r}.')
            files.extend(found)
        elif osp.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(f'Run file {path!r} does not exist.')
    return files


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_ap_values(path: str, values: Dict[str, float]) -> None:
    """Refuse AP values that are not COCO fractions.

    ``CocoMetric`` reports every AP as a fraction in [0, 1], or -1 where
    COCO could not compute it. A value such as 37.4 is a percentage (it
    would print as 3740.0), NaN and infinity are no result at all.

    Raises:
        ValueError: Naming ``path``, the key and the value.
    """
    for key, value in values.items():
        if not math.isfinite(value):
            raise ValueError(
                f'{path}: metric {key} is {value!r}, not a finite number: '
                'the evaluation produced no result for it. Evaluate the '
                'checkpoint again (tools/test.py) or leave this run out.')
        if value == -1 or 0 <= value <= 1:
            continue
        if 1 < value <= 100:
            raise ValueError(
                f'{path}: metric {key} is {value!r}, outside [0, 1]: it '
                'looks like a percentage. The run file must hold COCO AP as '
                f'a fraction, as tools/test.py writes it ({value / 100:g} '
                f'for {value:g} AP); divide the AP values by 100.')
        raise ValueError(
            f'{path}: metric {key} is {value!r}, outside [0, 1]: COCO AP is '
            'a fraction in [0, 1], or -1 where COCO could not compute it.')


def load_run(path: str) -> dict:
    """Read and validate one run JSON.

    Returns:
        dict: ``name`` (config file stem), ``config``, ``checkpoint``,
        ``metrics``, ``params``, ``flops`` (None if absent), ``tasks``
        (``'bbox'`` and, when present, ``'segm'``) and ``source``.

    Raises:
        ValueError: On invalid JSON or a missing / malformed field; the
            message names the file.
    """
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: invalid JSON ({e.msg} at line {e.lineno}, '
                         f'column {e.colno}).') from e
    except UnicodeDecodeError as e:
        raise ValueError(
            f'{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at '
            f'offset {e.start} cannot be decoded), so not a run file '
            'written by tools/test.py.') from e
    except OSError as e:
        raise ValueError(f'{path}: cannot be read ({e.strerror or e}).') from e
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a JSON object with config, '
                         f'checkpoint, metrics and params, got '
                         f'{type(data).__name__}.')
    missing = [
        k for k in ('config', 'checkpoint', 'metrics', 'params')
        if k not in data
    ]
    if missing:
        raise ValueError(f'{path}: missing field(s) {", ".join(missing)}.')
    if not isinstance(data['config'], str):
        raise ValueError(f'{path}: "config" must be a string.')
    metrics = data['metrics']
    if not isinstance(metrics, dict):
        raise ValueError(f'{path}: "metrics" must be an object, got '
                         f'{type(metrics).__name__}.')
    used = {
        f'coco/{task}_{suffix}'
        for task in TASKS
        for _, suffix in AP_COLUMNS
    }
    bad = sorted(k for k in used & set(metrics) if not _is_number(metrics[k]))
    if bad:
        raise ValueError(f'{path}: non-numeric metric(s) {", ".join(bad)}.')
    present = sorted(used & set(metrics))
    _check_ap_values(path, {k: metrics[k] for k in present})
    tasks = []
    for task in TASKS:
        keys = [f'coco/{task}_{suffix}' for _, suffix in AP_COLUMNS]
        present = [k for k in keys if k in metrics]
        if present and len(present) < len(keys):
            absent = sorted(set(keys) - set(present))
            raise ValueError(f'{path}: incomplete {task} metrics, missing '
                             f'{", ".join(absent)}.')
        if present:
            tasks.append(task)
    if 'bbox' not in tasks:
        raise ValueError(f'{path}: no COCO bbox metrics (expected '
                         '"coco/bbox_mAP", "coco/bbox_mAP_50", ...).')
    params = data['params']
    if not _is_number(params) or not math.isfinite(params) or params < 0:
        raise ValueError(f'{path}: "params" must be a finite non-negative '
                         f'number, got {params!r}.')
    flops = data.get('flops')
    if flops is not None and (not _is_number(flops) or not math.isfinite(flops)
                              or flops < 0):
        raise ValueError(f'{path}: "flops" must be a finite non-negative '
                         f'number, got {flops!r}.')
    return dict(
        name=osp.splitext(osp.basename(data['config']))[0],
        config=data['config'],
        checkpoint=data['checkpoint'],
        metrics=metrics,
        params=params,
        flops=flops,
        tasks=tasks,
        source=path)


def load_runs(paths: Sequence[str],
              names: Optional[Sequence[str]] = None) -> List[dict]:
    """Load every run of ``paths`` (files or directories); ``names``
    overrides the displayed names (one per run). Duplicate names get a
    ``#N`` suffix."""
    runs = [load_run(p) for p in find_run_files(paths)]
    if names is not None:
        if len(names) != len(runs):
            raise ValueError(f'Got {len(names)} names for {len(runs)} runs.')
        for run, name in zip(runs, names):
            run['name'] = name
    counts: Dict[str, int] = {}
    for run in runs:
        counts[run['name']] = counts.get(run['name'], 0) + 1
        if counts[run['name']] > 1:
            run['name'] = f'{run["name"]} #{counts[run["name"]]}'
    return runs


def _ap(run: dict, task: str, suffix: str) -> Optional[float]:
    """AP in percent, or None when COCO reports it undefined (< 0)."""
    value = run['metrics'][f'coco/{task}_{suffix}']
    return None if value < 0 else 100.0 * value


def markdown_cell(text: str) -> str:
    """``text`` made safe for one Markdown table cell: ``|`` is escaped as
    ``\\|`` (shown as ``|``), line breaks become spaces."""
    return re.sub(r'[\r\n]+', ' ', str(text)).replace('|', r'\|')


def make_table(runs: Sequence[dict]) -> str:
    """One Markdown table: a row per run and task (bbox, and segm for
    instance segmentation runs). AP values are percentages."""
    header = (['Model', 'Task'] + [title for title, _ in AP_COLUMNS] +
              ['Params (M)', 'FLOPs (G)'])
    lines = [
        '| ' + ' | '.join(header) + ' |',
        '|' + '|'.join([':---', ':---:'] + ['---:'] * (len(header) - 2)) + '|'
    ]
    for run in runs:
        for task in run['tasks']:
            aps = [_ap(run, task, suffix) for _, suffix in AP_COLUMNS]
            cells = [markdown_cell(run['name']), task]
            cells += ['-' if ap is None else f'{ap:.1f}' for ap in aps]
            cells.append(f'{run["params"] / 1e6:.2f}')
            flops = run['flops']
            cells.append('-' if flops is None else f'{flops / 1e9:.1f}')
            lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def plot_ap_bars(runs: Sequence[dict], out_dir: str) -> List[str]:
    """Write one bar chart per AP size (``ap.png``, ``ap_small.png``,
    ``ap_medium.png``, ``ap_large.png``) comparing the runs, with bbox and
    segm bars side by side. Returns the written paths."""
    # Figure + Agg canvas directly: no pyplot state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    os.makedirs(out_dir, exist_ok=True)
    tasks = [t for t in TASKS if any(t in run['tasks'] for run in runs)]
    width = 0.8 / len(tasks)
    paths = []
    for stem, title, suffix in CHARTS:
        fig = Figure(figsize=(max(4.0, 1.2 * len(runs) + 2), 4.0), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        for t_idx, task in enumerate(tasks):
            xs, values = [], []
            for r_idx, run in enumerate(runs):
                if task not in run['tasks']:
                    continue
                x = r_idx + (t_idx - (len(tasks) - 1) / 2) * width
                ap = _ap(run, task, suffix)
                if ap is None:  # undefined in COCO (no such objects)
                    ax.text(x, 0, 'n/a', ha='center', va='bottom', fontsize=7)
                else:
                    xs.append(x)
                    values.append(ap)
            bars = ax.bar(xs, values, width=width, color=_COLORS[task])
            ax.bar_label(bars, fmt='%.1f', fontsize=7)
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels([run['name'] for run in runs],
                           rotation=20,
                           ha='right',
                           fontsize=7)
        ax.set_ylabel(f'{title} (%)')
        ax.set_title(f'COCO {title}')
        ax.set_xlim(-0.5, len(runs) - 0.5)
        ax.legend(
            handles=[Patch(color=_COLORS[t], label=t) for t in tasks],
            fontsize=8)
        fig.tight_layout()
        path = osp.join(out_dir, f'{stem}.png')
        fig.savefig(path, format='png')
        paths.append(path)
    return paths


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Gather COCO results of test runs into a Markdown table '
        'and per-size AP bar charts.')
    parser.add_argument(
        'runs',
        nargs='+',
        help='run JSON files written by tools/test.py, or directories '
        f'containing {METRICS_FILE}')
    parser.add_argument('--out-md', required=True, help='output Markdown file')
    parser.add_argument(
        '--out-png-dir', required=True, help='directory for the PNG charts')
    parser.add_argument(
        '--names', nargs='+', help='display names, one per run (in order)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        runs = load_runs(args.runs, args.names)
    except (ValueError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    table = make_table(runs)
    md_dir = osp.dirname(osp.abspath(args.out_md))
    os.makedirs(md_dir, exist_ok=True)
    with open(args.out_md, 'w', encoding='utf-8') as f:
        f.write(table)
    pngs = plot_ap_bars(runs, args.out_png_dir)
    print(table)
    print(f'Wrote {args.out_md} and {", ".join(pngs)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
