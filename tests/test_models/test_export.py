"""Export of the ODConv ResNet-50 backbone: ONNX (dynamic batch) and
torch.compile.

Its first stage at a quarter of the width, made strided (3 bottlenecks:
1x1, 3x3 and strided dynamic convs, the downsample path), which keeps every
code path of the full network and exports or compiles in a fraction of its
time.
"""
import onnx
import onnxruntime as ort
import pytest
import torch
from mmdet.registry import MODELS

from dynconv_mmdet.models.layers import ODConv2d

NUM_STAGES = 1


def build_eval(preset):
    model = MODELS.build(
        dict(
            type='DynamicResNet',
            depth=50,
            base_channels=16,
            num_stages=NUM_STAGES,
            strides=(2, ),
            dilations=(1, ),
            out_indices=tuple(range(NUM_STAGES)),
            preset=preset))
    model.eval()  # mmdet's ResNet.train() returns None: no chaining
    return model


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize('preset', ['odconv1x', 'odconv4x'])
def test_onnx_dynamic_batch(preset, tmp_path):
    model = build_eval(preset)
    path = str(tmp_path / f'{preset}.onnx')
    # an example batch of 2: torch.export specialises a dimension whose
    # example size is 1
    torch.onnx.export(
        model, (torch.randn(2, 3, 64, 64), ),
        path,
        dynamo=True,
        optimize=False,
        input_names=['input'],
        dynamic_shapes={'x': {
            0: torch.export.Dim('batch', min=1, max=64)
        }})
    graph = onnx.load(path, load_external_data=False).graph
    batch_dim = graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.HasField('dim_value')
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for batch in (1, 3):
        x = torch.randn(batch, 3, 64, 64)
        with torch.no_grad():
            expected = model(x)
        outs = session.run(None, {'input': x.numpy()})
        assert len(outs) == len(expected) == NUM_STAGES
        for out, ref in zip(outs, expected):
            assert out.shape == tuple(ref.shape)
            assert rel_err(torch.from_numpy(out), ref) < 1e-5


def test_onnx_single_layer_per_sample_kernels(tmp_path):
    """A 3x3 ODConv with 4 kernels (per-sample kernels for every sample)."""
    layer = ODConv2d(8, 16, 3, padding=1, kernel_num=4).eval()
    path = str(tmp_path / 'layer.onnx')
    torch.onnx.export(
        layer, (torch.randn(2, 8, 9, 9), ),
        path,
        dynamo=True,
        optimize=False,
        dynamic_shapes={'x': {
            0: torch.export.Dim('batch', min=1, max=64)
        }})
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    for batch in (1, 3, 5):
        x = torch.randn(batch, 8, 9, 9)
        with torch.no_grad():
            expected = layer(x)
        out = torch.from_numpy(session.run(None, {name: x.numpy()})[0])
        assert rel_err(out, expected) < 1e-5


def test_torch_compile_inference():
    """The stage through dynamo and AOTAutograd in one graph (no graph
    break), batch 2: the per-sample grouped-conv path; inductor's code
    generation (minutes for a stage on 2 cores) on one layer."""
    model = build_eval('odconv4x')
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        outs = torch.compile(model, backend='aot_eager', fullgraph=True)(x)
    assert len(outs) == NUM_STAGES
    for out, ref in zip(outs, expected):
        assert rel_err(out, ref) < 1e-5
    layer = ODConv2d(8, 16, 3, padding=1, kernel_num=4).eval()
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        out = torch.compile(layer, fullgraph=True)(x)
        assert rel_err(out, layer(x)) < 1e-4
