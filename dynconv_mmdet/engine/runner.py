# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""A runner that reads checkpoints safely and loads them strictly.

mmengine's :class:`~mmengine.runner.Runner` reads ``load_from``,
``--resume`` and ``tools/test.py`` checkpoints with ``torch.load`` without
``weights_only`` (so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` turns safe
loading off) and loads them with ``strict=False`` (weights of another preset
are evaluated "with warnings"). :class:`SafeLoadRunner` changes only that:

* every checkpoint is read by :func:`dynconv_mmdet.checkpoint.
  read_checkpoint` (``weights_only=True``, explicit);
* it must fit the model exactly, or the run stops with the missing,
  unexpected and mis-shaped keys listed. The config switch ``strict_load =
  False`` (``tools/test.py --partial-load``) loads what fits instead;
* ``--resume`` without a checkpoint asks
  :func:`~dynconv_mmdet.engine.resume.find_resume_checkpoint` for the
  newest checkpoint that loads.

Our base configs select it with ``runner_type = 'SafeLoadRunner'``;
``tools/train.py`` and ``tools/test.py`` build the runner named there.
"""
from typing import Callable, Optional, Sequence, Tuple, Union

from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..checkpoint import (load_state_dict_checked, model_state_dict,
                          read_checkpoint)
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
            self.resume(resume_from)
            self._has_loaded = True
        elif self._load_from is not None:
            self.load_checkpoint(self._load_from)
            self._has_loaded = True
