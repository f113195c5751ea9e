"""What makes a killed, cancelled or preempted job resume bit for bit.

* :class:`NoiseSeedHook` makes the denoising noise of every step a function of (seed, rank,
  step), so the step that mmengine checkpoints is the noise generator's whole state.
* :class:`ResumableCheckpointHook` is mmengine's ``CheckpointHook``, made crash-safe and
  signal-aware: SLURM's warning before the time limit, preemption and ``scancel`` send SIGTERM
  (or the signal asked for with ``--signal``); the job then finishes its step, saves a
  checkpoint and stops with :class:`Preempted`, and a rerun of the same command resumes.

The data pipeline's numpy/python RNG needs nothing: on resume mmengine replays the data
loader up to the checkpointed step (``Advance dataloader N steps``) with the same seeds.
"""
from __future__ import annotations

import os.path as osp
import signal
import threading
from pathlib import Path

import torch
from mmengine.dist import all_reduce, get_rank, get_world_size, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ddep.io import atomic_path, atomic_write_text

STOP_SIGNALS = ("SIGTERM", "SIGUSR1")


class Preempted(RuntimeError):
    """The job was asked to stop (SIGTERM/SIGUSR1) and saved a checkpoint to resume from."""

    def __init__(self, signum: int, step: int, checkpoint: str) -> None:
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        super().__init__(f"stopped by {signal.Signals(signum).name} after iteration {step}; "
                         f"checkpoint {checkpoint} saved: rerun the same command to resume")


@HOOKS.register_module()
class NoiseSeedHook(Hook):
    """Before every training step, seeds the model's noise (if it has any) from the run's
    seed, this process's rank and the step."""

    priority = "VERY_HIGH"

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if hasattr(model, "seed_noise"):
            model.seed_noise(runner.seed, get_rank(), runner.iter)


@HOOKS.register_module()
class ResumableCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook with two changes for jobs that get killed.

    * Crash-safe: a checkpoint is written to a temporary file and renamed, ``last_checkpoint``
      is replaced atomically, and only then are older checkpoints deleted. (mmengine 0.10.7
      deletes first: a kill or a full disk during a save left nothing to resume from.)
    * On one of ``signals`` the job finishes the current step, saves a checkpoint (unless the
      step just saved one) and raises :class:`Preempted`. All DDP ranks stop at the same step.
    """

    def __init__(self, *args, signals: tuple[str, ...] = STOP_SIGNALS, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.signals = tuple(signals)
        self._received = 0
        self._saved_step = -1
        self._previous_handlers: dict[int, object] = {}

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process():  # temporary files of a save that a SIGKILL interrupted
            for stale in Path(self.out_dir).glob(".*.pth.*.tmp"):
                stale.unlink(missing_ok=True)
        if threading.current_thread() is threading.main_thread():
            for name in self.signals:
                signum = getattr(signal, name)
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame) -> None:
        self._received = self._received or signum

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        signum = self._received
        if get_world_size() > 1:  # every rank must stop at the same step
            flag = torch.tensor(signum)
            all_reduce(flag, op="max")  # in place
            signum = int(flag)
        if not signum:
            return
        step = runner.iter + 1
        if self._saved_step != step:
            self._save_checkpoint(runner)
        runner.logger.warning(f"received {signal.Signals(signum).name}: checkpoint saved after "
                              f"iteration {step}, stopping")
        raise Preempted(signum, step, self.last_ckpt)

    def after_train(self, runner) -> None:
        super().after_train(runner)
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        drop = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                drop.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info("keep_ckpt_ids", list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, filename)
        runner.message_hub.update_info("last_ckpt", self.last_ckpt)
        if is_main_process():  # runner.save_checkpoint itself saves on the main process only
            with atomic_path(self.last_ckpt) as tmp:
                runner.save_checkpoint(
                    self.out_dir, tmp.name, self.file_client_args, save_optimizer=self.save_optimizer,
                    save_param_scheduler=self.save_param_scheduler, meta=meta,
                    by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
            atomic_write_text(osp.join(runner.work_dir, "last_checkpoint"), self.last_ckpt)
            for old in drop:
                Path(self.out_dir, self.filename_tmpl.format(old)).unlink(missing_ok=True)
        self._saved_step = step
