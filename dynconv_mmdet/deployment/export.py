# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Export a detector of ours to ONNX for ONNX Runtime with mmdeploy.

:func:`export_onnx` is mmdeploy's ``torch2onnx`` (its task processor, its
test-pipeline input and its ``mmdeploy.apis.onnx.export`` with the mmdet
rewriters) with what our models need around it:

* the adjustments of mmdeploy 1.3.1 to our torch (:mod:`.compat`);
* the export form of the dynamic convs (:data:`EXPORT_FORMS`), chosen from
  the deploy config, never from the example batch: ``'free'`` when the
  input's batch axis is dynamic, ``'single'`` for a static batch of one,
  ``'grouped'`` for a static batch above one (:func:`export_form_for`);
* mmcv's DCN / DCNv2 in standard ONNX operators for ONNX Runtime
  (:mod:`.deform_conv`);
* a refusal that says why for a family that does not implement the chosen
  form.

The deploy configs of ``configs/deploy/`` (:func:`deploy_config`) are
complete (mmdeploy's wheel ships none of its configs).
"""
import copy
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Union

import torch.nn as nn
from mmengine import Config

from ..models.layers import DynamicConv2d
from ..models.layers.functional import check_export_form, export_form
from .compat import mmdeploy_compat
from .deform_conv import register_rewriters

#: ``configs/deploy`` of the repository (or of the installed package).
DEPLOY_CONFIG_DIRS = (
    osp.join(
        osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
        'configs', 'deploy'),
    osp.join(
        osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'configs',
        'deploy'),
)
#: Shape modes of :func:`deploy_config`.
SHAPES = ('static', 'dynamic')
#: Opsets with deploy configs: 11 (mmdeploy's default) and 13.
OPSETS = (11, 13)


class NotDeployableError(ValueError):
    """The model cannot be exported for this backend; the message says
    why and what to do instead."""


def deploy_config(task: str = 'detection',
                  shape: str = 'dynamic',
                  opset: int = 11) -> str:
    """Path of our ONNX Runtime deploy config.

    Args:
        task (str): ``'detection'`` (Faster R-CNN, RTMDet, YOLOX) or
            ``'instance-seg'`` (Mask R-CNN).
        shape (str): ``'static'`` or ``'dynamic'`` (free batch, height and
            width).
        opset (int): 11 or 13.
    """
    if task not in ('detection', 'instance-seg'):
        raise ValueError(f"task must be 'detection' or 'instance-seg', got "
                         f'{task!r}')
    if shape not in SHAPES:
        raise ValueError(f'shape must be one of {SHAPES}, got {shape!r}')
    if opset not in OPSETS:
        raise ValueError(f'opset must be one of {OPSETS}, got {opset!r}')
    name = f'{task}_onnxruntime_{shape}'
    if opset != 11:
        name += f'_opset{opset}'
    for folder in DEPLOY_CONFIG_DIRS:
        path = osp.join(folder, name + '.py')
        if osp.isfile(path):
            return path
    raise FileNotFoundError(f'deploy config {name}.py not found in '
                            f'{DEPLOY_CONFIG_DIRS}')


def task_of(model_cfg: Config) -> str:
    """``'instance-seg'`` for a model with a mask head, else
    ``'detection'``."""
    roi_head = model_cfg.model.get('roi_head') or {}
    return 'instance-seg' if roi_head.get('mask_head') else 'detection'


def batch_is_free(deploy_cfg: Config) -> bool:
    """Whether the deploy config leaves the input's batch axis free."""
    onnx_cfg = deploy_cfg.onnx_config
    axes = (onnx_cfg.get('dynamic_axes') or {}).get(onnx_cfg['input_names'][0])
    if axes is None:
        return False
    return 0 in (axes if isinstance(axes, (list, tuple)) else list(axes))


def export_form_for(deploy_cfg: Config, batch: int) -> str:
    """The export form of the dynamic convs for a deploy config and an
    example batch: ``'free'`` with a free batch axis (whatever ``batch``
    is), else ``'single'`` for ``batch == 1`` and ``'grouped'`` above."""
    if batch_is_free(deploy_cfg):
        return 'free'
    return 'single' if batch == 1 else 'grouped'


def check_export_form_fits(deploy_cfg: Config, form: str, batch: int) -> None:
    """Refuse an explicit form that would give a wrong graph."""
    check_export_form(form)
    if batch_is_free(deploy_cfg) and form != 'free':
        raise NotDeployableError(
            f'export form {form!r} fixes the batch, but the deploy config '
            "leaves the batch axis free: use 'free' (the default here) or a "
            'static deploy config')
    if form == 'single' and batch != 1:
        raise NotDeployableError(
            f"export form 'single' needs an example batch of 1, got {batch}")


def check_deployable(model: nn.Module,
                     backend: str = 'onnxruntime',
                     form: Optional[str] = None) -> None:
    """Raise :class:`NotDeployableError` for what ``backend`` cannot run:
    a dynamic conv whose family does not declare ``form`` in its
    :attr:`~dynconv_mmdet.models.layers.DynamicConv2d.export_forms`.

    mmcv's DCN and DCNv2 convs export for ONNX Runtime in standard
    operators (:mod:`.deform_conv`; ONNX Runtime has no DCN op, and the
    DCNv2 op of mmdeploy 1.3.1's library gives wrong outputs in the
    onnxruntime of our stack).
    """
    if form is not None:
        refused = sorted({
            type(m).__name__
            for m in model.modules() if isinstance(m, DynamicConv2d)
            and form not in type(m).export_forms
        })
        if refused:
            raise NotDeployableError(
                f'{", ".join(refused)} do(es) not implement the export form '
                f'{form!r} (export_forms); use a deploy config whose shape '
                'mode takes a form the family declares')


def _as_list(img: Union[Any, Sequence[Any]]) -> List[Any]:
    return list(img) if isinstance(img, (list, tuple)) else [img]


def export_onnx(model_cfg: Union[str, Config],
                deploy_cfg: Union[str, Config],
                img: Union[str, Any, Sequence[Any]],
                work_dir: str,
                checkpoint: Optional[str] = None,
                save_file: str = 'end2end.onnx',
                form: Optional[str] = None,
                device: str = 'cpu',
                dump_info: bool = False) -> Dict[str, Any]:
    """Export a detector to ONNX with mmdeploy (``torch2onnx``'s steps).

    Args:
        model_cfg: The detector config (path or :class:`Config`).
        deploy_cfg: The deploy config (:func:`deploy_config`).
        img: Example image(s) (path or ``HxWx3`` uint8 array, or a list of
            them: the example batch). A static deploy config fixes the
            graph's input to their shape after the test pipeline.
        work_dir (str): Where the ONNX file (and the SDK files) go.
        checkpoint (str, optional): Weights; ``None`` keeps the built
            model's initialisation.
        save_file (str): Name of the ONNX file.
        form (str, optional): Export form of the dynamic convs; default
            :func:`export_form_for` the deploy config.
        device (str): Where the model runs while it is traced.
        dump_info (bool): Also write mmdeploy's SDK files
            (``deploy.json``, ``pipeline.json``, ``detail.json``).

    Returns:
        dict: ``onnx`` (path), ``form``, ``batch``, ``input_shape``.
    """
    from mmdeploy.apis import build_task_processor
    from mmdeploy.apis.onnx import export
    from mmdeploy.utils import (get_backend, get_dynamic_axes, get_input_shape,
                                get_onnx_config, load_config)
    deploy_cfg, model_cfg = load_config(deploy_cfg, model_cfg)
    # mmdeploy's create_input rewrites the test pipeline of the config it
    # was given (an array loader for array images); the SDK files describe
    # the untouched one, which starts with LoadImageFromFile
    sdk_model_cfg = copy.deepcopy(model_cfg)
    os.makedirs(work_dir, exist_ok=True)
    imgs = _as_list(img)
    batch = len(imgs)
    if form is None:
        form = export_form_for(deploy_cfg, batch)
    check_export_form_fits(deploy_cfg, form, batch)
    backend = get_backend(deploy_cfg).value

    register_rewriters()
    with mmdeploy_compat():
        task_processor = build_task_processor(model_cfg, deploy_cfg, device)
        model = task_processor.build_pytorch_model(checkpoint)
        check_deployable(model, backend, form)
        data, inputs = task_processor.create_input(
            imgs if batch > 1 else imgs[0],
            get_input_shape(deploy_cfg),
            data_preprocessor=getattr(model, 'data_preprocessor', None))
        if isinstance(inputs, list) and len(inputs) == 1:
            inputs = inputs[0]
        onnx_cfg = get_onnx_config(deploy_cfg)
        names = onnx_cfg['input_names'] + onnx_cfg['output_names']
        prefix = osp.join(work_dir, osp.splitext(save_file)[0])
        with export_form(form):
            export(
                model,
                inputs,
                input_metas={
                    'data_samples': data['data_samples'],
                    'mode': 'predict'
                },
                output_path_prefix=prefix,
                backend=backend,
                input_names=onnx_cfg['input_names'],
                output_names=onnx_cfg['output_names'],
                context_info=dict(deploy_cfg=deploy_cfg),
                opset_version=onnx_cfg.get('opset_version', 11),
                dynamic_axes=get_dynamic_axes(deploy_cfg, names),
                verbose=onnx_cfg.get('verbose', False),
                keep_initializers_as_inputs=onnx_cfg.get(
                    'keep_initializers_as_inputs', True),
                optimize=onnx_cfg.get('optimize', False))
        if dump_info:
            from mmdeploy.backend.sdk.export_info import export2SDK
            export2SDK(
                deploy_cfg,
                sdk_model_cfg,
                work_dir,
                pth=checkpoint,
                device=device)
    return dict(
        onnx=prefix + '.onnx',
        form=form,
        batch=batch,
        input_shape=tuple(inputs.shape))
