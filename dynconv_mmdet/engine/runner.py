# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""A runner that reads checkpoints safely and loads them strictly.

mmengine's :class:`~mmengine.runner.Runner`, left to itself, reads
``load_from``, ``--resume`` and ``tools/test.py`` checkpoints with
``torch.load`` without ``weights_only`` (so
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` turns safe loading off) and loads
them with ``strict=False`` (weights of another preset are evaluated "with
warnings"). :class:`SafeLoadRunner` changes only that:

* every checkpoint is read by :func:`dynconv_mmdet.checkpoint.
  read_checkpoint` (``weights_only=True``, explicit);
* it must fit the model exactly, or the run stops with the missing,
  unexpected and mis-shaped keys listed. The config switch ``strict_load =
  False`` (``tools/test.py --partial-load``) loads what fits instead;
* every image is loaded by :class:`~dynconv_mmdet.datasets.transforms.
  CheckedLoadImageFromFile`, which names a file it cannot read (the
  configs' pipelines say ``LoadImageFromFile``, the name mmdet's
  ``DetInferencer`` and mmdeploy look for);
* ``--resume`` without a checkpoint asks
  :func:`~dynconv_mmdet.engine.resume.find_resume_checkpoint` for the
  newest checkpoint that loads.

Our base configs select it with ``runner_type = 'SafeLoadRunner'``;
``tools/train.py`` and ``tools/test.py`` build the runner named there.
"""
import copy
from contextlib import nullcontext
from typing import Callable, List, Optional, Sequence, Tuple, Union

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from ..checkpoint import (load_state_dict_checked, model_state_dict,
                          partial_loading, read_checkpoint)
from ..datasets.transforms import use_checked_image_loader
from .resume import find_resume_checkpoint


@RUNNERS.register_module()
class SafeLoadRunner(Runner):
    """mmengine's Runner with safe reading and strict loading.

    Takes every argument of :class:`~mmengine.runner.Runner`; the config
    may set ``strict_load`` (default True) to allow partial loading.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.strict_load = bool(self.cfg.get('strict_load', True))

    @staticmethod
    def build_dataloader(dataloader: Union[DataLoader, dict], *args,
                         **kwargs) -> DataLoader:
        """mmengine's ``build_dataloader`` whose image loaders are the
        checked loader (the config itself, dumped to the work directory
        and saved in checkpoints, keeps ``LoadImageFromFile``)."""
        if isinstance(dataloader, dict):
            dataloader = copy.deepcopy(dataloader)
            use_checked_image_loader(dataloader)
        return Runner.build_dataloader(dataloader, *args, **kwargs)

    def register_custom_hooks(self, hooks: List[Union[Hook, dict]]) -> None:
        """mmengine's ``register_custom_hooks``; the pipelines that hooks
        carry (``PipelineSwitchHook``) load images with the checked
        loader."""
        hooks = [
            copy.deepcopy(hook) if isinstance(hook, dict) else hook
            for hook in hooks
        ]
        use_checked_image_loader([h for h in hooks if isinstance(h, dict)])
        super().register_custom_hooks(hooks)

    def _loading(self, strict: bool):
        """Where a checkpoint is loaded: a partial load, asked for, must
        not be refused by the model's own guard (``checkpoint.guard``), nor
        by the loads of hooks (EMA) that follow it."""
        return nullcontext() if strict else partial_loading()

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: Optional[bool] = None,
                        revise_keys: Optional[Sequence[Tuple[str,
                                                             str]]] = None):
        """Read ``filename`` safely and load it into the model.

        Args:
            filename (str): Local path, URL, ``torchvision://`` or
                ``open-mmlab://``.
            map_location (str): Where tensors go. Defaults to ``'cpu'``.
            strict (bool, optional): Refuse a checkpoint that does not fit
                exactly; ``None``: the config's ``strict_load``.
            revise_keys (Sequence[tuple[str, str]], optional): ``(pattern,
                replacement)`` applied to the keys; default: remove a
                ``module.`` prefix.

        Returns:
            dict: The checkpoint.

        Raises:
            dynconv_mmdet.checkpoint.CheckpointError: A file safe loading
                refuses, or (strict) one that does not fit, listing keys.
        """
        strict = self.strict_load if strict is None else strict
        checkpoint = read_checkpoint(filename, map_location)
        with self._loading(strict):
            self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(
            self.model) else self.model
        load_state_dict_checked(
            model,
            model_state_dict(checkpoint, filename, revise_keys),
            strict=strict,
            source=filename,
            logger=self.logger)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def load_or_resume(self) -> None:
        """Load ``load_from``, or resume: from the given checkpoint, or
        from the newest one of the work directory that loads."""
        if self._has_loaded:
            return
        if self._resume and self._load_from is None:
            resume_from = find_resume_checkpoint(self.work_dir, self.logger)
        elif self._resume:
            resume_from = self._load_from
        else:
            resume_from = None
        if resume_from is not None:
            with self._loading(self.strict_load):
                self.resume(resume_from)
            self._has_loaded = True
        elif self._load_from is not None:
            self.load_checkpoint(self._load_from)
            self._has_loaded = True
