# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""A small dynamic detector through mmdeploy to ONNX Runtime (issue 20,
items 1 and 3): RTMDet-tiny with ODConv (4 kernels) at an eighth of the
width, 160 px, exported once per shape mode (module fixtures), its
detections equal to mmdeploy's PyTorch model with the same rewriters,
batch 1 and 2. The per-family numerics are in ``test_export_forms.py``."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine import Config

from dynconv_mmdet import deployment

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'odconv4x_rtmdet_tiny_8xb32-300e_coco.py')
SIZE = 160


def small_config():
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.update(
        init_cfg=None, widen_factor=0.125, deepen_factor=0.167)
    cfg.model.neck.update(in_channels=[32, 64, 128], out_channels=16)
    cfg.model.bbox_head.update(in_channels=16, feat_channels=16)
    # no truncation of the detections: equal sets, whatever the ties
    cfg.model.test_cfg.update(score_thr=0.2, nms_pre=100000, max_per_img=1000)
    for step in cfg.test_pipeline:
        if step['type'] == 'Resize':
            step['scale'] = (SIZE, SIZE)
        if step['type'] == 'Pad' and 'size' in step:
            step['size'] = (SIZE, SIZE)
    cfg.test_dataloader.dataset.pipeline = cfg.test_pipeline
    return cfg


def image(seed):
    rs = np.random.RandomState(seed)
    img = (rs.rand(SIZE, SIZE, 3) * 120).astype(np.uint8)
    for _ in range(6):
        x0, y0 = rs.randint(0, 130, 2)
        img[y0:y0 + rs.randint(8, 30), x0:x0 + rs.randint(8, 40)] = (
            rs.randint(0, 255, 3))
    return img


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """Random weights with spread scores and well-formed boxes."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(small_config().model)
    model.init_weights()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.1, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.2, 0.2, generator=g)
        for name, p in model.named_parameters():
            if 'rtm_reg' in name and p.dim() == 1:
                p.uniform_(0.5, 1.5, generator=g)
            elif 'rtm_cls' in name:
                if p.dim() > 1:
                    p.normal_(0, 2.0, generator=g)
                else:
                    p.uniform_(-6, -2, generator=g)
    path = str(tmp_path_factory.mktemp('ckpt') / 'model.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def exported(tmp_path_factory, checkpoint, shape, opset):
    work_dir = str(tmp_path_factory.mktemp(f'{shape}{opset}'))
    return deployment.export_onnx(
        small_config(),
        deployment.deploy_config('detection', shape, opset),
        image(0),
        work_dir,
        checkpoint,
        dump_info=shape == 'dynamic')


@pytest.fixture(scope='module')
def dynamic11(tmp_path_factory, checkpoint):
    return exported(tmp_path_factory, checkpoint, 'dynamic', 11)


@pytest.fixture(scope='module')
def static13(tmp_path_factory, checkpoint):
    return exported(tmp_path_factory, checkpoint, 'static', 13)


def run_both(info, checkpoint, deploy, batch):
    """(ONNX Runtime's, PyTorch's) ``(dets, labels)`` for ``batch``
    images; PyTorch with mmdeploy's rewriters, as exported."""
    import onnxruntime as ort
    from mmdeploy.apis import build_task_processor
    from mmdeploy.core import RewriterContext, patch_model
    from mmdeploy.utils import IR, load_config
    deploy_cfg, model_cfg = load_config(deploy, small_config())
    processor = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    model = processor.build_pytorch_model(checkpoint)
    imgs = [image(10 + i) for i in range(batch)]
    data, inputs = processor.create_input(
        imgs if batch > 1 else imgs[0],
        None,
        data_preprocessor=model.data_preprocessor)
    session = ort.InferenceSession(
        info['onnx'], providers=['CPUExecutionProvider'])
    outs = session.run(None, {'input': inputs.numpy()})
    patched = patch_model(
        model, cfg=deploy_cfg, backend='onnxruntime', ir=IR.ONNX)
    with deployment.mmdeploy_compat(), RewriterContext(
            cfg=deploy_cfg,
            backend='onnxruntime',
            opset=deploy_cfg.onnx_config.opset_version), torch.no_grad():
        ref = patched.forward(inputs, data['data_samples'], mode='predict')
    return outs, [r.numpy() for r in ref]


def assert_same_detections(outs, ref):
    (dets, labels), (ref_dets, ref_labels) = outs, ref
    assert dets.shape == ref_dets.shape and labels.shape == ref_labels.shape
    for b in range(dets.shape[0]):
        kept = ref_dets[b][:, 4] > 0
        assert kept.sum() > 10  # a test with detections to compare
        for det, label in zip(dets[b], labels[b]):
            if det[4] <= 0:
                continue
            same = ref_dets[b][(ref_labels[b] == label)
                               & (np.abs(ref_dets[b][:, 4] - det[4]) < 1e-4)]
            assert len(same), (b, det, label)
            assert np.abs(same[:, :4] - det[:4]).max(1).min() < 1e-2


@pytest.mark.parametrize('batch', [1, 2])
def test_dynamic_opset11_same_detections(dynamic11, checkpoint, batch):
    """Exported with one image and a free batch axis: the batch stays free
    ('free' form) and every detection is PyTorch's, batch 1 and 2."""
    import onnx
    assert dynamic11['form'] == 'free'
    graph = onnx.load(dynamic11['onnx']).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert all(
        d.dim_param and not d.HasField('dim_value')
        for d in (dims[0], dims[2], dims[3]))
    outs, ref = run_both(dynamic11, checkpoint,
                         deployment.deploy_config('detection', 'dynamic', 11),
                         batch)
    assert_same_detections(outs, ref)


def test_sdk_info_dumped(dynamic11):
    """``--dump-info``: mmdeploy's SDK files, whose pipeline starts with
    ``LoadImageFromFile`` (the loader our configs keep)."""
    import json
    folder = osp.dirname(dynamic11['onnx'])
    for name in ('deploy.json', 'pipeline.json', 'detail.json'):
        assert osp.isfile(osp.join(folder, name))
    with open(osp.join(folder, 'pipeline.json')) as f:
        pipeline = json.load(f)
    tasks = pipeline['pipeline']['tasks']
    assert tasks[0]['transforms'][0]['type'] == 'LoadImageFromFile'


def test_static_opset13_same_detections(static13, checkpoint):
    assert static13['form'] == 'single'
    assert static13['input_shape'] == (1, 3, SIZE, SIZE)
    outs, ref = run_both(static13, checkpoint,
                         deployment.deploy_config('detection', 'static', 13),
                         1)
    assert_same_detections(outs, ref)
