"""dynconv_mmdet.analysis.benchmark.timing: interleaved, repeated steps."""
import torch

from dynconv_mmdet.analysis import benchmark as bench


def test_rounds_are_interleaved_abba():
    calls = []
    steps = {
        key: bench.Step(lambda key=key: calls.append(key))
        for key in 'abc'
    }
    res, peaks = bench.run_interleaved(steps, 3, torch.device('cpu'), False)
    # one warm-up pass each, then rounds in alternating order
    assert ''.join(calls) == 'abc' + 'abc' + 'cba' + 'abc'
    assert not peaks and set(res) == set('abc')
    for timing in res.values():
        assert len(timing['runs_ms']) == 3
        assert timing['median_ms'] == sorted(timing['runs_ms'])[1]
