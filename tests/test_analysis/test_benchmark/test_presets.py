"""dynconv_mmdet.analysis.benchmark.presets: a user's layout on the
command line."""
import pytest

from dynconv_mmdet.analysis import benchmark as bench


def test_parse_layout():
    text = "dict(conv_cfg=dict(type='X', k=-1), stages=(True,)*2+(False,))"
    layout = dict(conv_cfg=dict(type='X', k=-1), stages=(True, True, False))
    # a bare dict (the custom row) or NAME=DICT, as the complexity tool
    assert bench.parse_layout(text) == (bench.CUSTOM, layout)
    assert bench.parse_layout(f'foo={text}') == ('foo', layout)
    for text in ("__import__('os')", 'dict(stages=(True,)*4)', 'dict(a=1'):
        with pytest.raises(ValueError, match='--dynamic'):
            bench.parse_layout(text)
