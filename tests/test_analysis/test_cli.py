# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The ``--dynamic`` layout literal of the analysis tools: read without
``eval``, bounded before anything is computed."""
import pytest

from dynconv_mmdet.analysis.cli import read_layout


def test_layout_literal_is_read():
    layout = read_layout(
        "dict(conv_cfg=dict(type='ODConv2d', kernel_num=2 * 2), "
        'stages=(True, ) * 2 + (False, ) * 2)')
    assert layout == dict(
        conv_cfg=dict(type='ODConv2d', kernel_num=4),
        stages=(True, True, False, False))


@pytest.mark.parametrize('literal, key', [
    ("dict(conv_cfg=dict(type='ODConv2d', kernel_num=9**9**9))",
     'conv_cfg.kernel_num'),
    ('dict(stages=(True, ) * 9**9**9)', 'stages'),
])
def test_unbounded_layout_literal_is_refused_at_once(literal, key):
    # ``eval`` of these runs for minutes (or runs out of memory)
    with pytest.raises(ValueError, match='cannot read the layout') as err:
        read_layout(literal)
    assert key in str(err.value)


@pytest.mark.parametrize('literal', [
    '__import__("os").system("true")', 'dict(a=open("x"))', '(1).real',
    "dict(conv_cfg='x') if True else 0"
])
def test_layout_literal_allows_no_code(literal):
    with pytest.raises(ValueError, match='cannot read the layout'):
        read_layout(literal)
