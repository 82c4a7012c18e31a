# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""The export forms of the dynamic convs (issue 20, item 2), family by
family, through ONNX Runtime: each form right for the batches its graph
admits, at opset 11 and 13, with free height and width, and the two
silent-wrong traps of the eager inference path."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn

from dynconv_mmdet.models.layers import (DynamicConv2d, ODConv2d,
                                         finalize_dynamic_convs)
from dynconv_mmdet.models.layers.functional import (EXPORT_FORMS,
                                                    current_export_form,
                                                    eager_inference,
                                                    export_form)
from dynconv_mmdet.testing.families import family_examples, registered_families

#: Every registered family that gives a small example of itself
#: (KernelWarehouse, complete only inside a backbone, has its own tests;
#: FDConv's transforms as DFT products: ``test_fdconv_export.py``).
FAMILIES = sorted(family_examples(variants=False))


def build(name, in_channels=8, out_channels=16, kernel_size=3, **kwargs):
    """A family's example as a finalised, eval-mode module with non-trivial
    norm statistics."""
    cls, example = family_examples()[name]
    example.update(kwargs)
    torch.manual_seed(0)
    conv = cls(
        in_channels,
        out_channels,
        kernel_size,
        padding=kernel_size // 2,
        **example)
    model = nn.Sequential(conv)
    finalize_dynamic_convs(model)
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model


def export(model, example, path, form, opset, dynamic, dynamo=False):
    axes = None
    if dynamic:
        axes = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
    with export_form(form), torch.no_grad():
        torch.onnx.export(
            model, (example, ),
            str(path),
            input_names=['input'],
            opset_version=opset,
            dynamic_axes=axes,
            dynamo=dynamo)
    return ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])


def rel_err(out, ref):
    ref = ref.numpy()
    return float(np.abs(out - ref).max() / np.abs(ref).max())


def check(session, model, shapes):
    for shape in shapes:
        x = torch.randn(*shape)
        with torch.no_grad():
            ref = model(x)
        out = session.run(None, {'input': x.numpy()})[0]
        assert out.shape == tuple(ref.shape)
        assert rel_err(out, ref) < 1e-5, shape


@pytest.mark.parametrize('name', FAMILIES)
@pytest.mark.parametrize('opset', [11, 13])
def test_free_form_any_batch_and_size(name, opset, tmp_path):
    """Exported with an example batch of one and free axes: right for
    batch 2 and other sizes (the kernel size comes from the module; no
    unflatten, which opset 11 lacks)."""
    model = build(name)
    session = export(model, torch.randn(1, 8, 12, 12), tmp_path / 'm.onnx',
                     None, opset, True)
    graph = onnx.load(str(tmp_path / 'm.onnx')).graph
    batch_dim = graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.HasField('dim_value')
    check(session, model, [(1, 8, 12, 12), (2, 8, 12, 12), (3, 8, 9, 14)])


@pytest.mark.parametrize('name', FAMILIES)
def test_fixed_batch_forms(name, tmp_path):
    """'single' (batch fixed at 1) is one Conv with the sample's kernel and
    no unfold; 'grouped' (batch fixed at 2) one grouped Conv."""
    model = build(name)
    session = export(model, torch.randn(1, 8, 12, 12),
                     tmp_path / 'single.onnx', 'single', 11, False)
    graph = onnx.load(str(tmp_path / 'single.onnx')).graph
    ops = {n.op_type for n in graph.node}
    assert 'Conv' in ops and 'Im2Col' not in ops
    check(session, model, [(1, 8, 12, 12)])
    session = export(model, torch.randn(2, 8, 12, 12),
                     tmp_path / 'grouped.onnx', 'grouped', 13, False)
    check(session, model, [(2, 8, 12, 12)])


def test_pointwise_and_depthwise_free_form(tmp_path):
    """1x1 (batched matrix product) and depthwise 3x3 ODConvs."""
    for kwargs in (dict(kernel_size=1, kernel_num=4),
                   dict(in_channels=16, kernel_size=3, groups=16)):
        model = build('ODConv2d', **kwargs)
        channels = model[0].in_channels
        session = export(model, torch.randn(1, channels, 10, 10),
                         tmp_path / 'm.onnx', 'free', 11, True)
        check(session, model, [(2, channels, 10, 10), (1, channels, 7, 13)])


class _Probe(nn.Module):

    def forward(self, x):
        self.eager = eager_inference()
        return x + 1


@pytest.mark.parametrize('dynamo', [False, True])
def test_export_never_traces_the_inference_path(dynamo, tmp_path, monkeypatch):
    """Trap 1: the eager inference path computes ODConv's gates with an
    in-place sigmoid on the split views of the logits; traced by the
    TorchScript exporter that sigmoid is lost (max error ~0.2 here). Under
    either exporter (inside ``torch.no_grad()``, as mmdeploy exports) the
    layer takes :meth:`forward_export`, never the inference path, and the
    graph agrees with PyTorch."""
    probe = _Probe()
    with torch.no_grad():
        torch.onnx.export(
            probe, (torch.randn(2, 3), ),
            str(tmp_path / 'probe.onnx'),
            dynamo=dynamo,
            **(dict(optimize=False) if dynamo else {}))
    assert probe.eager is False
    model = build('ODConv2d', kernel_num=4)
    calls = []
    for method in ('forward_inference', 'inference_attention',
                   'forward_export'):
        original = getattr(ODConv2d, method)

        def spy(self, *args, _original=original, _name=method):
            calls.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(ODConv2d, method, spy)
    path = tmp_path / 'odconv.onnx'
    with torch.no_grad():
        if dynamo:
            torch.onnx.export(
                model, (torch.randn(2, 8, 12, 12), ),
                str(path),
                dynamo=True,
                optimize=False,
                input_names=['input'],
                dynamic_shapes={
                    'input': {
                        0: torch.export.Dim('batch', min=1, max=64)
                    }
                })
        else:
            torch.onnx.export(
                model, (torch.randn(1, 8, 12, 12), ),
                str(path),
                dynamo=False,
                input_names=['input'],
                dynamic_axes={'input': {
                    0: 'batch'
                }})
    assert 'forward_export' in calls
    assert 'forward_inference' not in calls
    assert 'inference_attention' not in calls
    session = ort.InferenceSession(
        str(path), providers=['CPUExecutionProvider'])
    check(session, model, [(2, 8, 12, 12), (3, 8, 12, 12)])


def test_form_is_not_taken_from_the_traced_batch(tmp_path):
    """Trap 2: a graph traced with one image and a free batch axis must
    not take the batch-1 form (one conv with the first sample's kernel):
    the second sample of a batch of two would get the first one's kernel.
    The form is the exporter's choice ('free' by default), checked here
    on the second sample; the tool refuses 'single' with a free batch."""
    model = build('DyConv2d')
    session = export(model, torch.randn(1, 8, 12, 12), tmp_path / 'm.onnx',
                     None, 13, True)
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        ref = model(x)
    out = session.run(None, {'input': x.numpy()})[0]
    assert rel_err(out[1:], ref[1:]) < 1e-5
    # the deployment tool refuses the batch-1 form for a free batch axis
    from mmengine import Config

    from dynconv_mmdet.deployment.export import (NotDeployableError,
                                                 check_export_form_fits)
    free = Config(
        dict(
            onnx_config=dict(
                input_names=['input'],
                dynamic_axes=dict(input={
                    0: 'batch',
                    2: 'height'
                }))))
    with pytest.raises(NotDeployableError, match='leaves the batch axis'):
        check_export_form_fits(free, 'single', 1)


def test_export_form_option():
    assert current_export_form() == 'free'
    with export_form('single'):
        assert current_export_form() == 'single'
    assert current_export_form() == 'free'
    with pytest.raises(ValueError, match='unknown export form'):
        with export_form('batch1'):
            pass
    assert set(EXPORT_FORMS) == {'single', 'grouped', 'free'}


def test_family_declares_its_forms(tmp_path):
    """An outside family declares the forms it implements; the others are
    refused with its name before anything is traced."""
    from dynconv_mmdet.deployment.export import (NotDeployableError,
                                                 check_deployable)

    class FreeOnlyConv(ODConv2d):
        export_forms = ('free', )

        def forward_export(self, x, form):
            self.forms_seen = form
            return super().forward_export(x, form)

    conv = FreeOnlyConv(8, 8, 3, padding=1).eval()
    model = nn.Sequential(conv)
    check_deployable(model, form='free')
    with pytest.raises(NotDeployableError, match='FreeOnlyConv'):
        check_deployable(model, form='single')
    export(model, torch.randn(1, 8, 6, 6), tmp_path / 'm.onnx', 'free', 11,
           True)
    assert conv.forms_seen == 'free'
    assert issubclass(FreeOnlyConv, DynamicConv2d)


#: Families complete only inside a backbone (no standalone example, e.g.
#: KernelWarehouse's shared warehouses), each exported in a ResNet-18 of the
#: first ResNet preset that uses it.
BACKBONE_FAMILIES = sorted(cls.__name__ for cls in registered_families()
                           if cls.example_kwargs is None)


def _resnet_with(name):
    from mmdet.registry import MODELS
    cls = MODELS.get('DynamicResNet')
    preset = next(p for p, layout in cls.presets.items()
                  if layout and layout['conv_cfg']['type'] == name)
    model = MODELS.build(
        dict(
            type='DynamicResNet',
            depth=18,
            base_channels=16,
            num_stages=2,
            strides=(1, 2),
            dilations=(1, 1),
            out_indices=(1, ),
            preset=preset))
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    assert any(type(m).__name__ == name for m in model.modules())
    return model


class _LastOutput(nn.Module):

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return self.backbone(x)[-1]


@pytest.mark.parametrize('name', BACKBONE_FAMILIES)
@pytest.mark.parametrize('opset', [11, 13])
def test_backbone_family_free_form(name, opset, tmp_path):
    model = _LastOutput(_resnet_with(name)).eval()
    session = export(model, torch.randn(1, 3, 32, 32), tmp_path / 'm.onnx',
                     None, opset, True)
    check(session, model, [(1, 3, 32, 32), (2, 3, 40, 24)])
