"""A ``dynamic=`` layout written on the command line is evaluated in bounded
time: ``eval`` would compute ``9 ** 9 ** 9`` for minutes."""
import time

import pytest

from dynconv_mmdet.analysis.layout_literal import (MAX_INT_BITS, MAX_ITEMS,
                                                   LayoutLiteralError,
                                                   evaluate_layout_literal)

VALID = [
    "dict(conv_cfg=dict(type='FooConv2d'), stages=(True,) * 4)",
    "dict(conv_cfg=dict(type='X', k=-1), stages=(True,)*2+(False,))",
    "dict(conv_cfg=dict(type='ODConv2d', kernel_num=4, reduction=1 / 16), "
    "stages=(False, ) * 2 + (True, ) * 2, downsample='strided', "
    "static=('layer1.0.conv1', ), variants=dict(Bottleneck=dict(stem=True)))",
    "{'conv_cfg': {'type': 'KWConv2d', 'cell_num_ratio': 2 ** -2}, "
    "'stages': [True] * 7, 'last_conv': None}",
    "dict(a=1 // 2, b=7 % 4, c=-3.5e-1, d=+2, e=2 ** 64, f={1, 2})",
]


@pytest.mark.parametrize('text', VALID)
def test_layouts_evaluate_as_python_does(text):
    assert evaluate_layout_literal(text) == eval(text)


@pytest.mark.parametrize('text,expected', [
    ('9**9**9', r"'9\*\*9\*\*9' would have about 1.23e\+09 bits; .*2\*\*4096"
     r' \(for base 9 the exponent must be at most 1292\)'),
    ("dict(conv_cfg=dict(type='ODConv2d', kernel_num=9**9**9))",
     r'^conv_cfg.kernel_num: .*9\*\*9\*\*9'),
    ('dict(stages=(True,) * 10**10)',
     r'^stages: .* at most 10000 .*repeat count must be in 0..10000'),
    ("'a' * 10**9 + 'b'", 'at most 10000'),
    ('[0] * 5000 * 5000', 'at most 10000'),
    ('2 ** 4096', 'more than 4096 bits'),
    ('(2 ** 4000) * (2 ** 4000)', 'more than 4096 bits'),
    ('2.0 ** 10 ** 9', 'out of range'),
    ("__import__('os').system('true')", "the only call allowed is dict"),
    ("open('x')", 'the only call allowed is dict'),
    ('(lambda: 1)()', 'the only call allowed is dict'),
    ('dict(a=x)', "^a: name 'x' is not allowed"),
    ('().__class__', 'Attribute is not allowed'),
    ('[i for i in range(9)]', 'ListComp is not allowed'),
    ("'%s' % 1", '% applies to numbers only'),
    ('dict(**{})', 'dict.* takes keywords'),
    ('1 // 0', 'division or modulo by zero'),
    ('dict(a=1', 'not a Python expression'),
    ('-' * 100_000 + '1', 'nested too deeply|not a Python expression'),
])
def test_refused_at_once_naming_the_key_and_the_range(text, expected):
    start = time.process_time()
    with pytest.raises(LayoutLiteralError, match=expected):
        evaluate_layout_literal(text)
    assert time.process_time() - start < 1.0
    assert issubclass(LayoutLiteralError, ValueError)


def test_bounds_are_inclusive():
    assert len(evaluate_layout_literal(f'(True,) * {MAX_ITEMS}')) == MAX_ITEMS
    assert evaluate_layout_literal(f'2 ** {MAX_INT_BITS - 1}') == \
        2 ** (MAX_INT_BITS - 1)
    with pytest.raises(TypeError):
        evaluate_layout_literal(b'dict()')
