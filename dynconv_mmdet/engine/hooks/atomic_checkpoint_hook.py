# Copyright (c) dynconv-mmdet contributors. All rights reserved.
"""A checkpoint hook whose files are complete or absent, never half written.

mmengine 0.10's ``CheckpointHook`` deletes the oldest checkpoint (beyond
``max_keep_ckpts``) and the previous best one *before* it writes the new
file, writes straight to the final name and rewrites ``last_checkpoint`` in
place. A run killed while saving, or a full disk, can therefore leave a
truncated checkpoint, a ``last_checkpoint`` naming a deleted file and no
usable checkpoint at all.

:class:`AtomicCheckpointHook` keeps mmengine's options and file names and
orders the work so that a usable checkpoint always exists on disk:

1. the checkpoint is written to a hidden temporary file in the same folder
   (``.iter_6.pth.tmp-<pid>``), flushed to disk (``fsync``) and renamed to
   its final name (a rename within a folder is atomic on POSIX file systems);
2. ``last_checkpoint`` is replaced the same way;
3. only then are the checkpoints beyond ``max_keep_ckpts`` and the previous
   best checkpoint removed.

If writing fails (``ENOSPC``, permissions, any ``OSError``) the temporary
file is removed, the previous checkpoint and ``last_checkpoint`` stay as
they were, and training stops with a :class:`CheckpointSaveError` that says
what to do. Before saving, the hook also refuses to write weights that are
not finite (NaN or infinity), so a diverged run never replaces its last good
checkpoint (see also :class:`CheckFiniteLossHook`).

Remote back-ends (``backend_args`` / ``out_dir`` on object storage) have no
atomic rename; for them the hook behaves as mmengine's.
"""
import glob
import os
import os.path as osp
from typing import Any, Dict, List, Optional

import torch
from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ...utils.formatting import format_listing
from .atomic_files import (TMP_SUFFIX, checkpoint_size, format_size, fsync_dir,
                           fsync_path, remove_checkpoint, remove_quietly,
                           write_text_atomic)
from .errors import CheckpointSaveError, NonFiniteError


def _non_finite_tensors(model: torch.nn.Module) -> List[str]:
    """Names of the floating-point parameters and buffers holding NaN or
    infinity."""
    return [
        name for name, value in model.state_dict().items()
        if torch.is_tensor(value) and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with atomic saving (see the module
    doc).

    Takes every argument of ``mmengine.hooks.CheckpointHook`` (``interval``,
    ``by_epoch``, ``max_keep_ckpts``, ``save_best``, ``save_last``, ...) with
    the same meaning, plus:

    Args:
        check_finite (bool): Refuse to save weights holding NaN or infinity
            and stop training with :class:`NonFiniteError`. Costs one pass
            over the weights per saved checkpoint. Defaults to True.

    Raises (during training):
        CheckpointSaveError: A checkpoint could not be written; the previous
            one is kept.
        NonFiniteError: The weights to save are not finite.
    """

    def __init__(self, *args, check_finite: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.check_finite = check_finite

    # -- helpers -----------------------------------------------------------
    def _is_local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    def _path(self, filename: str) -> str:
        return self.file_backend.join_path(self.out_dir, filename)

    def before_train(self, runner) -> None:
        """Set up the output folder (as mmengine) and remove temporary files
        left by a run killed while saving."""
        super().before_train(runner)
        if not (self._is_local() and is_main_process()):
            return
        patterns = [
            osp.join(glob.escape(str(self.out_dir)), f'.{name}{TMP_SUFFIX}*')
            for name in (self.filename_tmpl.format('*'), 'best_*')
        ]
        patterns.append(
            osp.join(
                glob.escape(runner.work_dir),
                f'.last_checkpoint{TMP_SUFFIX}*'))
        leftovers = set()
        for pattern in patterns:
            leftovers.update(glob.glob(pattern))
        for leftover in sorted(leftovers):
            remove_quietly(leftover)
            runner.logger.info(f'Removed {leftover}, a partial file left by '
                               'an interrupted save.')

    def _check_weights(self, runner, filename: str) -> None:
        if not self.check_finite:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        bad = _non_finite_tensors(model)
        if not bad:
            return
        last = runner.message_hub.get_info('last_ckpt')
        kept = (f'The last checkpoint written, {last}, is kept.'
                if last else 'No checkpoint was written in this run.')
        message = (
            f'training stopped at iteration {runner.iter + 1} (epoch '
            f'{runner.epoch + 1}): the model weights hold NaN or infinity in '
            f'{len(bad)} tensor(s): {format_listing(bad)}, so {filename} was '
            f'not written. {kept} The training diverged: lower the learning '
            'rate (optim_wrapper.optimizer.lr), clip the gradients '
            '(optim_wrapper.clip_grad=dict(max_norm=...)) or lengthen the '
            'warm-up, then resume from the last checkpoint or start anew.')
        runner.logger.error(message)
        raise NonFiniteError(message)

    def _save_atomically(self, runner, filename: str,
                         **save_kwargs: Any) -> None:
        """``runner.save_checkpoint`` to a temporary file, ``fsync``, rename
        to ``filename``; on ``OSError`` remove the temporary file and raise
        :class:`CheckpointSaveError`."""
        tmp_name = f'.{filename}{TMP_SUFFIX}{os.getpid()}'
        tmp_path = self._path(tmp_name)
        final_path = self._path(filename)
        try:
            runner.save_checkpoint(
                self.out_dir,
                tmp_name,
                self.file_client_args,
                backend_args=self.backend_args,
                **save_kwargs)
            if is_main_process():
                fsync_path(tmp_path)
                os.replace(tmp_path, final_path)
                fsync_dir(str(self.out_dir))
        except OSError as err:
            if is_main_process():
                remove_quietly(tmp_path)
            previous = self._previous_checkpoint(runner)
            kept = (f'The previous checkpoint {previous} is kept and '
                    '`last_checkpoint` still names it.'
                    if previous else 'No earlier checkpoint of this run '
                    'exists.')
            message = (
                f'could not write the checkpoint {final_path} at iteration '
                f'{runner.iter + 1} (epoch {runner.epoch + 1}): '
                f'{type(err).__name__}: {err}. The partial file was removed. '
                f'{kept} {self._space_advice(previous)} Then continue with '
                '`python tools/train.py CONFIG --resume`.')
            runner.logger.error(message)
            raise CheckpointSaveError(message) from err

    def _checkpoints_on_disk(self) -> List[str]:
        """The complete checkpoints (regular and best) of ``out_dir``;
        partial (hidden) files are left out."""
        folder = glob.escape(str(self.out_dir))
        found = set()
        for name in (self.filename_tmpl.format('*'), 'best_*'):
            found.update(
                p for p in glob.glob(osp.join(folder, name))
                if osp.isfile(p) or osp.isdir(p))
        return sorted(found)

    def _space_advice(self, previous: Optional[str]) -> str:
        """What to do when a save failed: free space, another folder and,
        only where it frees something, fewer checkpoints.

        An atomic save writes the new checkpoint next to the previous one
        and removes the previous one only afterwards, so with one
        checkpoint kept (``max_keep_ckpts=1``, or one on disk) keeping
        fewer would not help: the folder needs room for two checkpoints.

        Args:
            previous (str, optional): The checkpoint that is kept, whose
                size tells how much room the new one needs.
        """
        elsewhere = ('or choose another folder with --work-dir or '
                     'default_hooks.checkpoint.out_dir')
        on_disk = self._checkpoints_on_disk()
        if self.max_keep_ckpts == 1 or len(on_disk) <= 1:
            sized = previous or (on_disk[0] if on_disk else None)
            size = checkpoint_size(sized) if sized else None
            room = f'Free space in {self.out_dir}'
            if size is not None:
                room += f', about {format_size(size)} (the size of {sized})'
            kept = ('max_keep_ckpts is 1' if self.max_keep_ckpts == 1 else
                    f'{len(on_disk)} checkpoint(s) of this run on disk')
            return (f'{room}, {elsewhere}: an atomic save writes the new '
                    'checkpoint before it removes the previous one, so it '
                    'needs room for two checkpoints, and keeping fewer '
                    f'checkpoints would not help ({kept}).')
        return (f'Free space in {self.out_dir} ({elsewhere}, or keep fewer '
                'checkpoints with default_hooks.checkpoint.max_keep_ckpts: '
                f'{len(on_disk)} are on disk).')

    @staticmethod
    def _previous_checkpoint(runner) -> Optional[str]:
        """The checkpoint ``last_checkpoint`` names, if it exists (a failed
        save never touches it, even one under the same name)."""
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        try:
            with open(pointer, encoding='utf-8') as f:
                named = f.read().strip()
        except OSError:
            return None
        return named if named and osp.isfile(named) else None

    # -- mmengine's entry points -------------------------------------------
    def _save_checkpoint_with_step(self, runner, step: int,
                                   meta: Dict[str, Any]) -> None:
        """Save ``filename_tmpl.format(step)`` atomically, point
        ``last_checkpoint`` at it, then remove what ``max_keep_ckpts`` no
        longer keeps."""
        if not self._is_local():
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        filename = self.filename_tmpl.format(step)
        self._check_weights(runner, filename)

        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            # saved in the checkpoint, so that a resumed run knows them
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        previous_last = self.last_ckpt
        self.last_ckpt = self._path(filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        try:
            self._save_atomically(
                runner,
                filename,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                **self.args)
        except CheckpointSaveError:
            self.last_ckpt = previous_last
            runner.message_hub.update_info('last_ckpt', previous_last)
            raise

        if not is_main_process():
            return
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        try:
            write_text_atomic(pointer, str(self.last_ckpt))
        except OSError as err:
            message = (
                f'wrote {self.last_ckpt} but could not update {pointer}: '
                f'{type(err).__name__}: {err}. Free space in '
                f'{runner.work_dir}, then resume with `python tools/train.py '
                f'CONFIG --resume {self.last_ckpt}`.')
            runner.logger.error(message)
            raise CheckpointSaveError(message) from err

        for old_step in outdated:
            old_path = self._path(self.filename_tmpl.format(old_step))
            if old_path != self.last_ckpt:
                remove_checkpoint(old_path)

    def _save_best_checkpoint(self, runner, metrics: Dict[str, Any]) -> None:
        """Save a new best checkpoint atomically, then remove the previous
        best one."""
        if not self.save_best:
            return
        if not self._is_local():
            super()._save_best_checkpoint(runner, metrics)
            return

        if self.by_epoch:
            cur_type, cur_time = 'epoch', runner.epoch
        else:
            cur_type, cur_time = 'iter', runner.iter
        ckpt_filename = self.filename_tmpl.format(cur_time)
        meta = dict(epoch=runner.epoch, iter=runner.iter)

        if 'auto' in self.key_indicators:
            self._init_rule(self.rules, [list(metrics.keys())[0]])

        single = len(self.key_indicators) == 1
        updated = False
        for key_indicator, rule in zip(self.key_indicators, self.rules):
            score = metrics[key_indicator]
            suffix = '' if single else f'_{key_indicator}'
            score_key, path_key = f'best_score{suffix}', f'best_ckpt{suffix}'
            best_score = runner.message_hub.get_info(score_key,
                                                     self.init_value_map[rule])
            if score is None or not self.is_better_than[key_indicator](
                    score, best_score):
                continue
            updated = True

            previous = (
                self.best_ckpt_path
                if single else self.best_ckpt_path_dict[key_indicator])
            best_name = f'best_{key_indicator}_{ckpt_filename}'.replace(
                '/', '_')
            best_path = self._path(best_name)
            runner.message_hub.update_info(score_key, score)
            runner.message_hub.update_info(path_key, best_path)
            if single:
                self.best_ckpt_path = best_path
            else:
                self.best_ckpt_path_dict[key_indicator] = best_path
            self._check_weights(runner, best_name)
            self._save_atomically(
                runner,
                best_name,
                save_optimizer=False,
                save_param_scheduler=False,
                meta=dict(meta),
                by_epoch=False)
            if previous and previous != best_path and is_main_process() \
                    and remove_checkpoint(previous):
                runner.logger.info(
                    f'The previous best checkpoint {previous} is removed')
            runner.logger.info(
                f'The best checkpoint with {score:0.4f} {key_indicator} at '
                f'{cur_time} {cur_type} is saved to {best_name}.')

        # Re-save the latest checkpoint: its message hub must name the new
        # best checkpoint so that a resumed run removes it when it is beaten.
        if updated and self.last_ckpt is not None:
            self._save_checkpoint_with_step(runner, cur_time, dict(meta))
