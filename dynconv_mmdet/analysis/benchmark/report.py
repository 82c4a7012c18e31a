"""The benchmark's Markdown tables (format: docs/benchmark.md).

A variant without a released formulation has no ``released`` time: its
released cells and ratios read ``-``.
"""
import platform
from typing import Dict, List, Optional

#: The implementations of the eager tables, in column order.
IMPLS = ('static', 'released', 'ours')


def median(times: Dict[str, Dict], impl: str) -> Optional[float]:
    entry = times.get(impl)
    return None if entry is None else entry['median_ms']


def _ms(value: Optional[float], digits: int) -> str:
    return '-' if value is None else f'{value:.{digits}f}'


def _ratio(num: Optional[float], den: Optional[float]) -> str:
    return '-' if num is None or den is None else f'{num / den:.2f}'


def _ratios(times: Dict[str, Dict]) -> List[str]:
    s, r, o = (median(times, i) for i in IMPLS)
    return [_ratio(o, s), _ratio(o, r), _ratio(r, s)]


def _memory(peaks: Optional[Dict[str, float]], impls) -> str:
    if not peaks:
        return '-'
    return ' / '.join('-' if peaks.get(i) is None else f'{peaks[i]:.0f}'
                      for i in impls)


def format_layer_table(rows: List[Dict], mode: str) -> str:
    """``layer | shape | type | static ms | released ms | ours ms |
    ours/static | ours/released | released/static`` for one mode."""
    lines = [
        '| layer | shape | type | static ms | released ms | ours ms | '
        'ours/static | ours/released | released/static |',
        '|---|---|---|---:|---:|---:|---:|---:|---:|'
    ]
    for row in rows:
        if row['mode'] != mode:
            continue
        t = row['times']
        cells = [row['layer'], row['shape'], row['kind']]
        cells += [_ms(median(t, i), 1) for i in IMPLS] + _ratios(t)
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def format_backbone_table(rows: List[Dict]) -> str:
    """``backbone | preset | mode (batch) | static / released / ours ms |
    the three ratios | peak MiB static / released / ours``."""
    lines = [
        '| backbone | preset | mode (batch) | static ms | released ms | '
        'ours ms | ours/static | ours/released | released/static | '
        'peak MiB static / released / ours |',
        '|---|---|---|---:|---:|---:|---:|---:|---:|---:|'
    ]
    for row in rows:
        t = row['times']
        cells = [
            row['backbone'], row['preset'], f'{row["mode"]} '
            f'({row["batch"]})'
        ]
        cells += [_ms(median(t, i), 0) for i in IMPLS] + _ratios(t)
        cells.append(_memory(row.get('peak_mib'), IMPLS))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def format_compiled_table(rows: List[Dict]) -> str:
    """``backbone | input | preset | static ms | ours ms | ours/static |
    compile s static / ours`` (both compiled)."""
    lines = [
        '| backbone | input | preset | static ms | ours ms | ours/static | '
        'compile s static / ours |', '|---|---|---|---:|---:|---:|---:|'
    ]
    for row in rows:
        t = row['times']
        s, o = median(t, 'static'), median(t, 'ours')
        size = row['size']
        cells = [
            row['backbone'], f'{size}x{size}', row['preset'],
            _ms(s, 1),
            _ms(o, 1),
            _ratio(o, s), f'{row["compile_s"]["static"]:.1f} / '
            f'{row["compile_s"]["ours"]:.1f}'
        ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def format_detector_table(rows: List[Dict]) -> str:
    """``config | baseline | input | mode (batch) | baseline ms |
    released ms | config ms | config/baseline | config/released |
    released/baseline | peak MiB baseline / released / config``
    (``released``: the config with the released formulation of its dynamic
    convs; ``-`` without one)."""
    lines = [
        '| config | baseline | input | mode (batch) | baseline ms | '
        'released ms | config ms | config/baseline | config/released | '
        'released/baseline | peak MiB baseline / released / config |',
        '|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|'
    ]
    impls = ('baseline', 'released', 'config')
    for row in rows:
        t = row['times']
        b, r, c = (median(t, i) for i in impls)
        size = row['size']
        cells = [
            row['config'], row['baseline'], f'{size}x{size}',
            f'{row["mode"]} ({row["batch"]})'
        ]
        cells += [_ms(v, 0) for v in (b, r, c)]
        cells += [_ratio(c, b), _ratio(c, r), _ratio(r, b)]
        cells.append(_memory(row.get('peak_mib'), impls))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), for the header."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'
