"""Cross-entropy training of a frame classifier with truncated BPTT (``asr train``).

Config: a YAML file with a ``model:`` section (asr.nnet registry) and a ``training:``
section, every key of which is documented in :class:`asr.train.config.TrainingConfig`.

The loop, in named steps (as icefall's train.py):

- :meth:`Trainer.run`: epochs; resume; the guards; the final model dir.
- :meth:`Trainer.train_one_epoch`: the epoch's global stream schedule, this rank's
  batches (read ahead by a thread), one :meth:`Trainer.train_step` per batch, logging and
  checkpoints at fixed update counts.
- :meth:`Trainer.train_step` → :meth:`Trainer.compute_loss` (forward + summed cross-entropy)
  and the update rule's ``apply`` (synchronous, one process or DDP: asr/train/updates.py;
  asynchronous, ASGD: asr/train/asgd.py, asr/train/param_server.py).
- :meth:`Trainer.compute_validation_loss`: dev frame accuracy, sharded over ranks
  (asr/train/metrics.py: ``FrameMetrics``, ``evaluate``).
- :meth:`Trainer.save_checkpoint` / :meth:`Trainer._restore` (asr/train/checkpoint.py:
  ``Position``, ``read_checkpoint``); logs and plots: asr/train/logs.py.

Several processes (torchrun, ``asr train --workers N``): ``training.streams`` is the
global B; every rank computes the same schedule and runs streams ``[r·B/N, (r+1)·B/N)``.
In DDP mode the loss is the summed cross-entropy divided by the global number of frames
with a target in the batch (known to every rank from the schedule), times N because
DDP averages gradients: N ranks make the same updates as one process with B streams.
Rank 0 alone writes files.

Outputs in EXP: ``checkpoint.pt`` (atomic; model, optimizer, position, the carried state
of all B streams, RNG, the record of what the run is made from: ``Trainer._record``), ``log.csv`` (one row per epoch), ``steps.csv`` (loss per update),
``training_curves.png``, ``config.yaml`` (the config used) and, once training has
finished and passed the guards, ``final/`` (model dir of the best epoch by dev frame
accuracy; train frame accuracy when there is no dev set). Until then the best model dir
waits in ``EXP/.best-model``.
"""

from __future__ import annotations

import io
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from asr.errors import AsrError, ConfigError, TrainingError
from asr.io.atomic import atomic_dir, atomic_write_bytes, atomic_write_text
from asr.train.checkpoint import CHECKPOINT, Position, read_checkpoint
from asr.train.config import TrainingConfig
from asr.train.distributed import DistContext, replicated
from asr.train.logs import LOG_FIELDS, StepLog, plot_curves, write_log_csv
from asr.train.metrics import FrameMetrics, evaluate
from asr.train.updates import SyncUpdate

log = logging.getLogger(__name__)

BEST_DIR = ".best-model"
FINAL_DIR = "final"
LOG_EVERY = 50  # steps.csv rows are written (and the loss checked) every this many updates


def training_config(config: dict[str, Any], source: str = "") -> TrainingConfig:
    """The typed ``training:`` section of a config (one-line errors naming the key)."""
    return TrainingConfig.from_config(config, source)


@dataclass
class StepResult:
    """One batch on this rank: its metrics (zero when the update was skipped), whether the
    update was applied, and the learning rate used."""

    metrics: FrameMetrics
    ok: bool
    lr: float


class Trainer:
    """One training run in this process (rank ``dist.rank`` of ``dist.world_size``)."""

    def __init__(self, config: dict[str, Any], train_set, out_dir: str | os.PathLike, dev_set=None,
                 num_pdfs: int | None = None, device: str = "cpu", dist: DistContext | None = None,
                 mode: str = "ddp", progress: bool = True, on_update: Callable[[int], None] | None = None,
                 phone_map=None, asgd_params: str = "auto", alignment_tree: str | None = None,
                 inputs: dict[str, str | None] | None = None, fbank: dict[str, str] | None = None):
        import torch

        from asr.train.config import check_top_level

        check_top_level(config, "config")
        self.config = config
        self.model_cfg = config["model"]
        self.cfg = training_config(config)
        self.train_set = train_set
        self.dev_set = dev_set
        self.out = Path(out_dir)
        self.dist = dist or DistContext()
        self.mode = mode
        self.progress = progress and self.dist.is_main
        self.on_update = on_update
        self.phone_map = phone_map
        self.alignment_tree = alignment_tree  # SHA-256 of the tree of the alignments (model.yaml training.alignment_tree)
        self.fbank = fbank  # the training features' fbank options (model.yaml training.fbank)
        self.inputs = dict(inputs or {})  # option -> path of the data (--feats, --ali ...), fingerprinted in the checkpoint
        self.num_pdfs = int(num_pdfs or int(train_set.all_targets().max()) + 1)
        cfg = self.cfg
        if cfg.streams % self.dist.world_size:
            raise replicated(ConfigError(f"training.streams {cfg.streams} is not divisible by the {self.dist.world_size} "
                              f"processes (B is the global number of streams; each runs B/N)"))
        self.lo, self.hi = self.dist.stream_slice(cfg.streams)
        dev = torch.device(device)
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise ConfigError("--device cuda: no CUDA device available")
            if dev.index is None:
                dev = torch.device("cuda", torch.cuda.current_device())
        self.device = dev
        self.amp = cfg.amp and dev.type == "cuda"
        U = len(train_set)
        self.updates_per_epoch = len(self._schedule(0))
        self.total_updates = self.updates_per_epoch * cfg.epochs
        torch.manual_seed(cfg.seed)
        self.model = _build_model(self.model_cfg, train_set.feat_dim, self.num_pdfs).to(dev)
        from asr.train.schedule import make_optimizer

        self.optimizer = make_optimizer(self.model.parameters(), cfg)
        self.record = self._record()
        self.position = Position()
        self.history: list[dict[str, Any]] = []
        self.carried = None
        self.rule = None  # the update rule, made in run() (it may need the resumed state)
        self._asgd_params = asgd_params
        self._U = U

    # --- schedule ------------------------------------------------------------------------
    def _schedule(self, epoch: int):
        from asr.train.data import epoch_order, make_schedule

        c = self.cfg
        return make_schedule(self.train_set.lengths, c.streams, c.chunk, c.output_delay,
                             epoch_order(len(self.train_set), c.seed, epoch))

    # --- the run -------------------------------------------------------------------------
    def run(self, resume: bool = False, max_updates: int | None = None,
            restart_if_changed: bool = False) -> dict[str, Any]:
        """Train all epochs (or until ``max_updates``); returns a summary dict. ``resume``: from
        the checkpoint, which must have been made from the same inputs (a ConfigError
        otherwise; with ``restart_if_changed`` the run starts afresh instead)."""
        import yaml

        self.check_same_inputs()
        ckpt = self._open_checkpoint(resume)
        why = self._resume_difference(ckpt) if ckpt is not None else None
        if why is not None and not restart_if_changed:
            raise replicated(ConfigError(f"{self.out}: cannot resume: {why} (start afresh without --resume or with "
                                         "another --out)"))
        if why is not None:
            if self.dist.is_main:
                log.warning("%s: %s: starting afresh (--restart-if-changed)", self.out, why)
                (self.out / CHECKPOINT).unlink()
            ckpt = None
            self.dist.barrier()
        logged = 0  # the last update in steps.csv to keep (rows after the checkpoint are dropped)
        if ckpt is not None:
            self._restore(ckpt)
            # steps.csv counts the updates of all ASGD workers: batches × the checkpoint's world size
            logged = self.position.update * (ckpt.get("world_size", 1) if ckpt.get("mode") == "asgd" else 1)
        self.rule = self._make_rule()
        del ckpt
        if self.dist.is_main:
            atomic_write_text(self.out / "config.yaml", yaml.safe_dump(self.config, sort_keys=False))
        self.steps = StepLog(self.out / "steps.csv", keep_until=logged) if self.dist.is_main else None
        self._pending: list[tuple[int, int, float, float, int, int, int]] = []
        n_params = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        if self.dist.is_main:
            log.info("training %s: %d params, %d utterances, %d frames, %d updates/epoch × %d epochs, "
                     "%d process(es), mode %s", self.model_cfg.get("family"), n_params, self._U,
                     self.train_set.num_frames, self.updates_per_epoch, self.cfg.epochs, self.dist.world_size,
                     self.rule.mode)
        self.warm_up()
        stopped = False
        failed = True
        try:
            while self.position.epoch < self.cfg.epochs and not stopped:
                stopped, complete = self.train_one_epoch(max_updates)
                if complete:
                    self.end_epoch()
            if self.position.epoch >= self.cfg.epochs:
                self.finish()
            failed = False
        finally:
            if self.steps is not None:
                self.steps.close()
            self.rule.close(failed)
        p = self.position
        return {"epochs_done": p.epoch, "steps": p.update, "updates": p.update * self.rule.updates_per_batch,
                "best_epoch": p.best_epoch,
                "best_monitor": p.best, "history": self.history, "stopped_early": stopped and p.epoch < self.cfg.epochs}

    def warm_up(self) -> None:
        """Two forward/backward passes on zeros of this rank's batch shape and one forward of
        the evaluation shape, thrown away (no update, gradients cleared).

        The numeric kernels do not compute the first calls of a shape exactly like the later
        ones (MKL builds JIT kernels for small GEMMs on first use; TorchScript's profiling
        executor optimises after the first runs), so without this the first updates of a
        resumed run would differ in the last bits from those of an uninterrupted run."""
        import torch

        c, D = self.cfg, self.train_set.feat_dim
        x = torch.zeros(self.hi - self.lo, c.chunk, D, device=self.device)
        state = None
        was = self.model.training
        self.model.train()
        for _ in range(2):
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits, state = self.model(x, state)
            logits.float().sum().backward()
            state = tuple(t.detach() for t in state)
        self.model.zero_grad(set_to_none=True)
        self.model.eval()
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            self.model(torch.zeros(c.eval_streams, c.eval_chunk, D, device=self.device), None)
        self.model.train(was)

    def _make_rule(self):
        if self.mode == "ddp":
            return SyncUpdate(self.model, self.optimizer, self.cfg, self.dist, self.device)
        if self.mode == "asgd":
            from asr.train.asgd import make_asgd_rule

            return make_asgd_rule(self, self._asgd_params)
        raise ConfigError(f"unknown training mode {self.mode!r} (ddp, asgd)")

    def train_one_epoch(self, max_updates: int | None) -> tuple[bool, bool]:
        """Run the rest of the current epoch; ``(stopped by max_updates, epoch complete)``."""
        from tqdm import tqdm

        from asr.nnet.state import reset_streams
        from asr.train.data import BatchReader, Prefetcher

        pos, cfg = self.position, self.cfg
        epoch = pos.epoch
        sched = self._schedule(epoch)
        if pos.batch == 0:
            self.carried = None
            pos.epoch_metrics, pos.seconds, pos.cpu_seconds, pos.bad_utterances = FrameMetrics(), 0.0, 0.0, 0
        utts, frames = sched.share(self.lo, self.hi)
        log.info("rank %d/%d: %d utterances, %d frames", self.dist.rank, self.dist.world_size, utts, frames)
        global_valid = sched.valid_counts()
        reader = BatchReader(self.train_set, sched, self.lo, self.hi, start=pos.batch,
                             pin_memory=self.device.type == "cuda")
        bar = tqdm(total=len(sched), initial=pos.batch, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                   disable=not self.progress, leave=False, dynamic_ncols=True)
        t_start = time.perf_counter() - pos.seconds
        cpu_start = time.process_time() - pos.cpu_seconds
        stopped = False
        shown = FrameMetrics()
        with Prefetcher(reader, cfg.prefetch) as batches:
            for batch in batches:
                b = batch.index
                self.carried = reset_streams(self.carried, batch.keep.to(self.device))
                step = self.train_step(batch, int(global_valid[b]))
                pos.update += 1
                pos.batch = b + 1
                pos.epoch_metrics.add(step.metrics)
                pos.bad_utterances += batch.bad
                shown.add(step.metrics)
                self._pending.append((epoch + 1, pos.update, step.lr, step.metrics.loss_sum, step.metrics.correct,
                                      step.metrics.frames, step.metrics.phone_correct))
                pos.seconds = time.perf_counter() - t_start
                pos.cpu_seconds = time.process_time() - cpu_start
                if self.progress and (b % 10 == 0 or b + 1 == len(sched)):
                    bar.set_postfix(loss=f"{shown.loss:.3f}", acc=f"{shown.acc:.3f}",
                                    fps=f"{shown.frames / max(pos.seconds, 1e-9):.0f}", refresh=False)
                bar.update(1)
                if self.on_update is not None:
                    self.on_update(pos.update)
                stopped = max_updates is not None and pos.update >= max_updates
                every = cfg.checkpoint_every
                checkpoint = stopped or bool(every and pos.update % every == 0)
                if checkpoint or pos.update % LOG_EVERY == 0:
                    self.flush_steps()
                if checkpoint:
                    self.save_checkpoint()
                if stopped:
                    break
        bar.close()
        return stopped, pos.batch >= len(sched)

    def train_step(self, batch, global_frames: int) -> StepResult:
        """Forward, loss, backward and the update rule's step for one batch."""
        import torch

        from asr.train.schedule import lr_at

        rule = self.rule
        lr = lr_at(rule.update_index(self.position.update), self.updates_per_epoch * rule.updates_per_batch,
                   self.total_updates * rule.updates_per_batch, self.cfg)
        local_frames = int((batch.y != -100).sum())
        denom = rule.normaliser(local_frames, global_frames)
        rule.before_forward()
        with torch.set_grad_enabled(bool(denom)):  # no update at all: no graph (DDP expects a backward after one)
            loss_sum, logits, y, new_state = self.compute_loss(rule.module, batch, self.carried)
        ok = True
        if denom:
            self.optimizer.zero_grad(set_to_none=True)
            (loss_sum / denom).backward()
            ok = rule.apply(lr)
        pos = self.position
        if not ok:
            pos.nan_run += 1
            log.warning("epoch %d batch %d: non-finite loss or gradient; step skipped, state reset (%d in a row)",
                        pos.epoch + 1, batch.index, pos.nan_run)
            self.carried = None
            if pos.nan_run >= self.cfg.nan_patience:
                e = TrainingError(
                    f"{pos.nan_run} non-finite losses in a row (epoch {pos.epoch + 1}, update {pos.update}); "
                    f"aborted. Check the features for NaN/inf or lower the learning rate (lr {lr:g}).")
                raise replicated(e) if rule.mode == "ddp" else e  # DDP ranks see the same gradient
            return StepResult(FrameMetrics(), False, lr)
        pos.nan_run = 0
        self.carried = new_state
        m = FrameMetrics()
        if local_frames:
            with torch.no_grad():
                m = self._frame_metrics(logits, y, float(loss_sum.detach()))
        return StepResult(m, True, lr)

    def compute_loss(self, module, batch, state):
        """``(summed cross-entropy, logits[S·T, P], targets[S·T], new state)`` of one batch."""
        import torch
        import torch.nn.functional as F

        x = batch.x.to(self.device, non_blocking=True)
        y = batch.y.to(self.device, non_blocking=True).reshape(-1)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits, new_state = module(x, state)
        logits = logits.float().reshape(-1, self.num_pdfs)
        loss_sum = F.cross_entropy(logits, y, ignore_index=-100, reduction="sum")
        return loss_sum, logits, y, new_state

    def _frame_metrics(self, logits, y, loss_sum: float) -> FrameMetrics:
        valid = y != -100
        pred = logits.argmax(-1)[valid]
        ref = y[valid]
        correct = int((pred == ref).sum())
        phone = self.phone_map.correct(pred, ref) if self.phone_map is not None else 0
        return FrameMetrics(loss_sum, correct, int(valid.sum()), phone)

    # --- logging, guards -----------------------------------------------------------------
    def flush_steps(self) -> None:
        """Reduce the pending per-update metrics over ranks, write them to steps.csv (rank 0),
        fold the epoch totals onto rank 0 and apply the divergence guard. Every rank calls
        this at the same update counts."""
        import torch

        pend, self._pending = self._pending, []
        pos = self.position
        em = pos.epoch_metrics.reduced(self.dist)
        bad = _reduce_int(self.dist, pos.bad_utterances)
        pos.epoch_metrics, pos.bad_utterances = (em, bad) if self.dist.is_main else (FrameMetrics(), 0)
        if not pend:
            return
        if self.dist.enabled:
            t = torch.tensor([[p[3], p[4], p[5], p[6]] for p in pend], dtype=torch.float64)
            self.dist.all_reduce(t)
            sums = t.tolist()
        else:
            sums = [[p[3], p[4], p[5], p[6]] for p in pend]
        window = FrameMetrics()
        for (ep, upd, lr, *_), (ls, c, n, ph) in zip(pend, sums):
            if n:
                if pos.first_loss is None:  # the loss of the untrained model: the divergence guard's yardstick
                    pos.first_loss = ls / n
                window.add(FrameMetrics(ls, int(c), int(n), int(ph)))
                if self.steps is not None:
                    self.steps.add(ep, upd * self.rule.updates_per_batch, lr, ls / n, c / n, int(n))
        if self.steps is not None:
            self.steps.flush()
        if window.frames:
            self._check_divergence(window.loss)

    def _check_divergence(self, loss: float) -> None:
        pos, factor = self.position, self.cfg.divergence_factor
        if factor is None:
            return
        ref = max(math.log(self.num_pdfs), pos.first_loss)
        if not loss <= factor * ref:
            raise replicated(TrainingError(f"training diverged: loss {loss:.4g} at update {pos.update} is more than "
                                f"{factor:g} × {ref:.3g} (the first loss, or ln num_pdfs); lower the learning "
                                f"rate (lr {self.cfg.lr:g}) and start again"))

    def end_epoch(self) -> None:
        """Dev evaluation, log.csv, plot, best model, checkpoint."""
        pos = self.position
        self.flush_steps()
        m = pos.epoch_metrics.reduced(self.dist)
        if self.dist.is_main and pos.bad_utterances:  # the sum over ranks (flush_steps)
            log.warning("epoch %d: %d utterance(s) could not be read and were skipped", pos.epoch + 1,
                        pos.bad_utterances)
        row = {"epoch": pos.epoch + 1, "updates": pos.update * self.rule.updates_per_batch,
               "lr": self._pending_lr(), "train_loss": m.loss, "train_acc": m.acc, "dev_loss": float("nan"),
               "dev_acc": float("nan"), "train_frames": m.frames, "seconds": pos.seconds,
               "frames_per_second": m.frames / max(pos.seconds, 1e-9)}
        if self.phone_map is not None:
            row["train_phone_acc"] = m.phone_acc
            row["dev_phone_acc"] = float("nan")
        self.rule.sync_model()
        if self.dev_set is not None:
            dm = self.compute_validation_loss()
            row["dev_loss"], row["dev_acc"] = dm.loss, dm.acc
            if self.phone_map is not None:
                row["dev_phone_acc"] = dm.phone_acc
        row.update(self.rule.epoch_stats())
        self.history.append(row)
        if self.dist.is_main:
            extra = "".join(f" | {k} {v:.4g}" for k, v in row.items() if k not in LOG_FIELDS)
            log.info("epoch %d: train loss %.4f acc %.4f | dev loss %.4f acc %.4f | %.0f frames/s%s", pos.epoch + 1,
                     row["train_loss"], row["train_acc"], row["dev_loss"], row["dev_acc"], row["frames_per_second"],
                     extra)
        monitor = row["dev_acc"] if self.dev_set is not None else row["train_acc"]
        if monitor > pos.best:
            pos.best, pos.best_epoch = monitor, pos.epoch + 1
            if self.dist.is_main:
                self._save_model_dir(self.out / BEST_DIR, row)
        if self.dist.is_main:
            write_log_csv(self.out / "log.csv", self.history)
            plot_curves(self.out / "training_curves.png", self.history)
        pos.epoch, pos.batch = pos.epoch + 1, 0
        self.save_checkpoint()

    def _pending_lr(self) -> float:
        from asr.train.schedule import lr_at

        r = self.rule
        return lr_at(max(0, r.update_index(self.position.update) - 1), self.updates_per_epoch * r.updates_per_batch,
                     self.total_updates * r.updates_per_batch, self.cfg)

    def finish(self) -> None:
        """After the last epoch: the chance guard, then ``final/`` (rank 0)."""
        pos = self.position
        margin = self.cfg.chance_margin
        monitored = self.dev_set if self.dev_set is not None else self.train_set
        if not pos.best_epoch:  # every epoch's monitored accuracy was NaN (e.g. no dev frame had a target)
            which = "dev" if self.dev_set is not None else "train"
            raise replicated(TrainingError(f"no epoch gave a {which} frame accuracy to choose the model by (NaN in "
                                           f"every row of {self.out / 'log.csv'}); no {FINAL_DIR}/ written"))
        if margin is not None and pos.best_epoch:
            counts = monitored.pdf_counts(self.num_pdfs)
            chance = float(counts.max() / max(1, counts.sum()))
            if not pos.best > chance + margin:
                which = "dev" if self.dev_set is not None else "train"
                raise replicated(TrainingError(f"the model did not learn: best {which} frame accuracy {pos.best:.4f} is at "
                                    f"chance level ({chance:.4f}, always the most frequent pdf); no {FINAL_DIR}/ "
                                    f"written. Check the alignments and the learning rate (lr {self.cfg.lr:g})"))
        if self.dist.is_main:
            best, final = self.out / BEST_DIR, self.out / FINAL_DIR
            if best.is_dir():
                if final.exists():
                    shutil.rmtree(final)
                os.replace(best, final)

    def _save_model_dir(self, path: Path, row: dict[str, Any]) -> None:
        from asr.nnet.model_dir import save_model_dir

        training = {"epoch": row["epoch"], "dev_frame_accuracy": _num(row["dev_acc"]),
                    "train_frame_accuracy": _num(row["train_acc"])}
        if "dev_phone_acc" in row:
            training["dev_phone_accuracy"] = _num(row["dev_phone_acc"])
        if self.alignment_tree:
            training["alignment_tree"] = self.alignment_tree
        if self.fbank:
            training["fbank"] = dict(self.fbank)
        with atomic_dir(path) as tmp:  # the previous best stays until the new one is whole
            save_model_dir(tmp, self.model, self.model_cfg, self.train_set.feat_dim, self.num_pdfs,
                           self.cfg.output_delay, cmvn=self.cfg.cmvn, extra={"training": training})

    # --- evaluation ----------------------------------------------------------------------
    def compute_validation_loss(self) -> FrameMetrics:
        """Frame cross-entropy and accuracy on the dev set: each rank evaluates every N-th
        utterance, the sums are reduced."""
        shard = self.dev_set.shard(self.dist.rank, self.dist.world_size)
        m = evaluate(self.model, shard, self.cfg.output_delay, self.cfg.eval_streams, self.cfg.eval_chunk,
                     self.device, self.amp, self.phone_map) if len(shard) else FrameMetrics()
        return m.reduced(self.dist)

    # --- checkpoints ---------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Gather the carried state of all streams and write EXP/checkpoint.pt (rank 0)."""
        import torch

        self.flush_steps()
        carried = None
        if self.carried is not None:
            carried = tuple(self.dist.all_gather_cat(t.detach(), dim=1).cpu() for t in self.carried)
        state = self.rule_state()
        self.dist.barrier()  # ASGD workers must not change shared parameters while rank 0 copies them
        if not self.dist.is_main:
            return
        buf = io.BytesIO()
        torch.save({
            "model": state["model"], "optimizer": state["optimizer"], "position": self.position.to_dict(),
            "history": self.history, "model_config": self.model_cfg, "carried": carried,
            "rng": torch.get_rng_state(), "streams": self.cfg.streams, "mode": self.rule.mode,
            "world_size": self.dist.world_size, "record": self.record,
        }, buf)
        atomic_write_bytes(self.out / CHECKPOINT, buf.getvalue())

    def rule_state(self) -> dict[str, Any]:
        """Model and optimizer state dicts (an ASGD parameter server gathers its shards)."""
        getter = getattr(self.rule, "state_dicts", None)
        if getter is not None:
            return getter()
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def _open_checkpoint(self, resume: bool) -> dict[str, Any] | None:
        """Rank 0 decides (resume or start) and reads the checkpoint; every rank gets it."""
        ckpt_path = self.out / CHECKPOINT
        answer: tuple[str, Any] = ("start", None)
        if self.dist.is_main:
            try:
                self.out.mkdir(parents=True, exist_ok=True)
                if self.dist.restart and ckpt_path.exists():
                    resume = True
                    log.warning("elastic restart %d: resuming from %s", self.dist.restart, ckpt_path)
                if ckpt_path.exists() and not resume and not self.dist.restart:
                    raise TrainingError(f"{self.out} already has {CHECKPOINT}; use --resume to continue or choose "
                                        "another --out")
                if resume and not ckpt_path.exists():
                    if not self.dist.restart:
                        raise TrainingError(f"--resume: no {ckpt_path}")
                elif resume:
                    answer = ("resume", read_checkpoint(ckpt_path))
            except (TrainingError, OSError) as e:
                answer = ("error", str(e))
        answer = self.dist.broadcast_object(answer)
        if answer[0] == "error":
            raise replicated(TrainingError(answer[1]))
        return answer[1]

    def _record(self) -> dict[str, Any]:
        """What this run is made from (the checkpoint's ``record``; ``--resume`` must match it):
        the model config, the training config less RESUMABLE_KEYS, and the fingerprints of the
        features (asr.io.fingerprint.feature_fingerprints) and alignments (file_hash)."""
        from asr.io.fingerprint import feature_fingerprints, file_hash

        record = _model_record(self.model_cfg)
        record.update(self.cfg.recorded())
        for option, path in sorted(self.inputs.items()):
            if path is None:
                record[option] = None
            else:
                record[option] = feature_fingerprints(path) if Path(path).is_dir() else file_hash(path)
        return record

    def check_same_inputs(self) -> None:
        """Every rank was given what rank 0 was (the record: configs and the fingerprints of
        the features and alignments); else a one-line error naming the first rank and input
        that differ. A rank with other data would compute another schedule of the epoch."""
        from asr.io.fingerprint import first_difference

        records = [_without_mtimes(r) for r in self.dist.all_gather_object(self.record)]
        for rank, record in enumerate(records):
            key = first_difference(records[0], record)
            if key is not None:
                raise replicated(ConfigError(
                    f"rank {rank}/{self.dist.world_size} was given another {key} than rank 0 (its value or content "
                    "differs): every machine needs the same config, data dirs and alignments at the same paths"))

    def _resume_difference(self, ck: dict[str, Any]) -> str | None:
        """How the checkpoint's inputs differ from this run's (the first difference, in words),
        None when they are the same; a checkpoint without a record (older asr) is checked on its
        model config only, with a warning."""
        from asr.io.fingerprint import first_difference

        recorded, current = ck.get("record"), self.record
        if recorded is None:
            if self.dist.is_main:
                log.warning("%s records only its model config (written by an older asr): resuming without checking "
                            "that the training config, features and alignments are the same", self.out / CHECKPOINT)
            recorded = _model_record(ck.get("model_config") or {})
            current = {k: v for k, v in current.items() if k.startswith("model.")}
        key = first_difference(recorded, current)
        if key is None:
            return None
        old, new = recorded.get(key), current.get(key)
        if key not in self.inputs:
            what = f"the checkpoint was trained with {key}={_show(old)}, this run has {_show(new)}"
        elif old is None:
            what = f"the checkpoint was trained without {key}, this run has {key} {self.inputs[key]}"
        elif new is None:
            what = f"the checkpoint was trained with {key}, this run has none"
        else:
            what = f"the checkpoint was trained with another {key} than {self.inputs[key]} (its content differs)"
        return what

    def _restore(self, ck: dict[str, Any]) -> None:
        import torch

        path = self.out / CHECKPOINT
        try:
            self.model.load_state_dict(ck["model"])
            self.optimizer.load_state_dict(ck["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise replicated(TrainingError(f"{path}: does not fit the model and optimizer of this config "
                                            f"({str(e).splitlines()[0]})")) from None
        self.position = Position.from_dict(ck["position"])
        if not self.dist.is_main:  # epoch totals so far live on rank 0 only (summed over ranks later)
            self.position.epoch_metrics, self.position.bad_utterances = FrameMetrics(), 0
        self.history = ck["history"]
        carried = ck["carried"]
        if carried is not None:
            if carried[0].shape[1] != self.cfg.streams:
                raise replicated(ConfigError(f"--resume: {path} carries the state of {carried[0].shape[1]} streams "
                                              f"but training.streams is {self.cfg.streams}"))
            carried = tuple(t[:, self.lo:self.hi].contiguous().to(self.device) for t in carried)
        self.carried = carried
        torch.set_rng_state(ck["rng"])
        if self.dist.is_main:
            p = self.position
            log.info("resuming %s at epoch %d, batch %d (update %d)", self.out, p.epoch + 1, p.batch, p.update)


def _model_record(model_cfg: dict[str, Any]) -> dict[str, Any]:
    return {f"model.{k}": v for k, v in model_cfg.items()}


def _show(value: Any) -> str:
    return "null" if value is None else str(value)


def _reduce_int(dist: DistContext, v: int) -> int:
    if not dist.enabled:
        return v
    import torch

    t = torch.tensor([v], dtype=torch.float64)
    dist.all_reduce(t)
    return int(t[0])


def _build_model(model_cfg: dict[str, Any], num_inputs: int, num_pdfs: int):
    """The model of the ``model:`` section; a bad value is a one-line ConfigError."""
    from asr.nnet.registry import build_model

    try:
        return build_model(model_cfg, num_inputs, num_pdfs)
    except (TypeError, ValueError) as e:
        # name the key whose value the family's builder could not take, when it can be told
        culprits = [k for k, v in model_cfg.items() if isinstance(v, (str, list, dict)) and k != "family"
                    and repr(v) in str(e)]
        where = f"model.{culprits[0]}: bad value {model_cfg[culprits[0]]!r}" if culprits else "model"
        raise replicated(ConfigError(f"{where} (family {model_cfg.get('family')}): {e}")) from None


def _without_mtimes(record: dict[str, Any]) -> dict[str, Any]:
    """A run's record with the arks' stamps (``path size mtime_ns``) cut to path and size: the
    copies of a data dir on several machines have other mtimes, not other features (the
    scp files and utt2num_frames are compared by content)."""
    out = dict(record)
    for key, value in record.items():
        if isinstance(value, dict) and isinstance(value.get("arks"), list):
            out[key] = {**value, "arks": [s.rsplit(" ", 1)[0] if s.rsplit(" ", 1)[-1].isdigit() else s
                                          for s in value["arks"]]}
    return out


def train(config: dict[str, Any], train_set, out_dir: str | os.PathLike, dev_set=None, num_pdfs: int | None = None,
          device: str = "cpu", resume: bool = False, max_updates: int | None = None, progress: bool = True,
          on_update: Callable[[int], None] | None = None, dist: DistContext | None = None, mode: str = "ddp",
          phone_map=None, asgd_params: str = "auto", alignment_tree: str | None = None,
          inputs: dict[str, str | None] | None = None, fbank: dict[str, str] | None = None,
          restart_if_changed: bool = False) -> dict[str, Any]:
    """Train on ``train_set`` (asr.train.data.UtteranceSet); returns a summary dict.

    ``max_updates``: stop (with a checkpoint) once this many batches have been done in
    total; ``resume`` then continues exactly where it stopped. ``on_update(update)`` is
    called after every update (benchmarks use it to time the inner loop). ``alignment_tree``:
    SHA-256 of the tree the alignments' pdfs come from, recorded in the model dir
    (``training.alignment_tree``) so that packing it with another tree fails. ``inputs``:
    option -> path of the data (``--feats``, ``--ali``, ...): their fingerprints are recorded in
    the checkpoint with the configs, and ``resume`` with others fails (``restart_if_changed``:
    starts afresh instead). ``fbank``: the fbank
    options of the training features, recorded in the model dir (``training.fbank``)."""
    from asr.train.distributed import agree_on_error

    trainer, error = None, None
    try:
        trainer = Trainer(config, train_set, out_dir, dev_set=dev_set, num_pdfs=num_pdfs, device=device, dist=dist,
                          mode=mode, progress=progress, on_update=on_update, phone_map=phone_map,
                          asgd_params=asgd_params, alignment_tree=alignment_tree, inputs=inputs, fbank=fbank)
    except AsrError as e:
        error = e
    agree_on_error(dist or DistContext(), error)
    return trainer.run(resume=resume, max_updates=max_updates, restart_if_changed=restart_if_changed)


def _num(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


