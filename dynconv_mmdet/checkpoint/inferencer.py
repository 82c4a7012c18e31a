# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""mmdet's ``DetInferencer`` with explicit safe reading and strict loading.

Once ``dynconv_mmdet`` is imported, mmdet's own ``DetInferencer`` already
reads its weights safely (every mmengine scheme goes through
:mod:`.schemes`) and refuses weights that do not fit a model holding one of
our backbones (:mod:`.guard`). :class:`StrictDetInferencer`, which
``tools/image_demo.py`` uses, makes both explicit for any model: it reads
with :func:`~dynconv_mmdet.checkpoint.read_checkpoint`, loads with
:func:`~dynconv_mmdet.checkpoint.load_state_dict_checked` (the
``strict_load`` argument is the demo's ``--partial-load``); the rest
(classes and palette from the checkpoint and config, pipeline, visualiser)
is mmdet's.
"""
from typing import Optional

import torch.nn as nn
from mmdet.apis import DetInferencer
from mmdet.registry import MODELS
from mmengine.config import ConfigDict

from .model import load_state_dict_checked, model_state_dict
from .reader import read_checkpoint


class StrictDetInferencer(DetInferencer):
    """``DetInferencer`` that refuses weights which do not fit the model.

    Args:
        *args: ``DetInferencer``'s arguments (``model`` must be a config).
        strict_load (bool): Refuse a checkpoint that does not fit exactly
            (:class:`~dynconv_mmdet.checkpoint.CheckpointMismatchError`
            listing the keys); ``False`` loads what fits. Default: True.
        **kwargs: ``DetInferencer``'s keyword arguments.
    """

    def __init__(self, *args, strict_load: bool = True, **kwargs) -> None:
        self.strict_load = strict_load
        self._weights: Optional[str] = None
        super().__init__(*args, **kwargs)

    def _init_model(self,
                    cfg: ConfigDict,
                    weights: Optional[str],
                    device: str = 'cpu') -> nn.Module:
        if not cfg:
            raise ValueError(
                'StrictDetInferencer needs the config of the model (it does '
                'not build a model from the config saved in a checkpoint)')
        self._weights = weights
        checkpoint = None if weights is None else read_checkpoint(weights)
        if cfg.model.get('pretrained') is not None:
            del cfg.model.pretrained
        model = MODELS.build(cfg.model)
        model.cfg = cfg
        self._load_weights_to_model(model, checkpoint, cfg)
        model.to(device)
        model.eval()
        return model

    def _load_weights_to_model(self, model: nn.Module,
                               checkpoint: Optional[dict],
                               cfg: Optional[ConfigDict]) -> None:
        if checkpoint is not None:
            source = self._weights or 'the checkpoint'
            load_state_dict_checked(
                model,
                model_state_dict(checkpoint, source),
                strict=self.strict_load,
                source=source)
            # mmdet's method takes the class names from the checkpoint's
            # meta and loads its weights leniently: hand it the weights just
            # loaded, so that its load changes nothing.
            checkpoint = dict(checkpoint, state_dict=model.state_dict())
        super()._load_weights_to_model(model, checkpoint, cfg)
