# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""Deployment with mmdeploy (``pip install .[deploy]``): the export to ONNX
for ONNX Runtime (:mod:`.export`) and the adjustments mmdeploy 1.3.1 needs
on our torch (:mod:`.compat`). Not imported by ``import dynconv_mmdet``:
mmdeploy is optional."""
from .compat import mmdeploy_compat
from .export import (NotDeployableError, batch_is_free, check_deployable,
                     deploy_config, export_form_for, export_onnx, task_of)

__all__ = [
    'mmdeploy_compat', 'NotDeployableError', 'batch_is_free',
    'check_deployable', 'deploy_config', 'export_form_for', 'export_onnx',
    'task_of'
]
