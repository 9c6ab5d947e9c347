"""Cross-entropy training of a frame classifier with truncated BPTT (``asr train``).

Config: a YAML file with a ``model:`` section (asr.nnet registry) and a ``training:``
section::

    training:
      optimizer: adam          # + lr, schedule, ... (asr/train/schedule.py)
      grad_clip: 5.0           # gradient-norm clipping; null = none
      epochs: 8
      streams: 32              # B parallel utterance streams
      chunk: 20                # T_bptt frames per chunk
      output_delay: 5          # d: target of frame t presented at step t + d
      seed: 1                  # init, utterance order (per epoch)
      cmvn: speaker            # FeatureReader mode: speaker | utterance | global | online | none
      checkpoint_every: 0      # also checkpoint every N updates (0: per epoch only)
      nan_patience: 5          # abort after this many non-finite losses in a row
      eval_streams: 64         # dev evaluation streams / chunk (results do not depend on them)
      eval_chunk: 100
      amp: false               # bfloat16 autocast on CUDA
      length_tolerance: 0      # frames an alignment may differ from the features

Outputs in EXP: ``checkpoint.pt`` (atomic; model, optimizer, position, carried state,
RNG), ``log.csv`` (one row per epoch), ``steps.csv`` (loss per update),
``training_curves.png``, ``final/`` (model dir of the best epoch by dev frame accuracy;
train frame accuracy when there is no dev set), ``config.yaml`` (the config used).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from asr.errors import ConfigError, TrainingError
from asr.io.atomic import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

TRAINING_DEFAULTS: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 1e-3,
    "grad_clip": 5.0,
    "epochs": 8,
    "streams": 32,
    "chunk": 20,
    "output_delay": 5,
    "seed": 1,
    "cmvn": "speaker",
    "checkpoint_every": 0,
    "nan_patience": 5,
    "eval_streams": 64,
    "eval_chunk": 100,
    "amp": False,
    "length_tolerance": 0,
}

CHECKPOINT = "checkpoint.pt"
LOG_FIELDS = ["epoch", "updates", "lr", "train_loss", "train_acc", "dev_loss", "dev_acc", "train_frames",
              "seconds", "frames_per_second"]


def training_config(config: dict[str, Any]) -> dict[str, Any]:
    t = dict(TRAINING_DEFAULTS)
    t.update(config.get("training") or {})
    for key in ("epochs", "streams", "chunk", "eval_streams", "eval_chunk"):
        if int(t[key]) < 1:
            raise ConfigError(f"training config: {key} must be >= 1 (got {t[key]})")
    if int(t["output_delay"]) < 0:
        raise ConfigError("training config: output_delay must be >= 0")
    return t


def train(config: dict[str, Any], train_corpus, out_dir: str | os.PathLike, dev_corpus=None, num_pdfs: int | None = None,
          device: str = "cpu", resume: bool = False, max_updates: int | None = None, progress: bool = True,
          on_update: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train on ``train_corpus`` (asr.train.data.Corpus); returns a summary dict.

    ``max_updates``: stop (with a checkpoint) once this many updates have been done in
    total; ``resume`` then continues exactly where it stopped. ``on_update(update)`` is
    called after every update (benchmarks use it to time the inner loop)."""
    import torch
    import torch.nn.functional as F
    import yaml
    from tqdm import tqdm

    from asr.nnet.model_dir import save_model_dir
    from asr.nnet.registry import build_model
    from asr.nnet.state import reset_streams
    from asr.train.data import IGNORE, epoch_order, get_batch, make_schedule
    from asr.train.schedule import lr_at, make_optimizer

    if "model" not in config:
        raise ConfigError("config has no model: section")
    tcfg = training_config(config)
    model_cfg = config["model"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise TrainingError(f"{out} already has {CHECKPOINT}; use --resume to continue or choose another --out")
    if resume and not ckpt_path.exists():
        raise TrainingError(f"--resume: no {ckpt_path}")
    num_pdfs = int(num_pdfs or int(train_corpus.targets.max()) + 1)
    seed = int(tcfg["seed"])
    streams, chunk, delay = int(tcfg["streams"]), int(tcfg["chunk"]), int(tcfg["output_delay"])
    epochs = int(tcfg["epochs"])
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device available")

    torch.manual_seed(seed)
    model = build_model(model_cfg, train_corpus.feat_dim, num_pdfs).to(dev)
    optimizer = make_optimizer(model.parameters(), tcfg)
    params = [p for p in model.parameters() if p.requires_grad]
    lengths = train_corpus.lengths
    U = len(lengths)
    updates_per_epoch = len(make_schedule(lengths, streams, chunk, delay, epoch_order(U, seed, 0)))
    total_updates = updates_per_epoch * epochs
    grad_clip = tcfg.get("grad_clip")
    amp = bool(tcfg["amp"]) and dev.type == "cuda"
    patience = int(tcfg["nan_patience"])

    pos = {"epoch": 0, "batch": 0, "update": 0, "nan_run": 0, "best": -1.0, "best_epoch": 0,
           "acc": [0.0, 0, 0, 0.0]}  # acc: loss sum, correct, frames, seconds of the current epoch
    history: list[dict[str, Any]] = []
    carried = None
    if resume:
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if ck.get("model_config") != model_cfg:
            raise ConfigError(f"--resume: the model config differs from the one in {ckpt_path}")
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        pos = ck["position"]
        history = ck["history"]
        carried = None if ck["carried"] is None else tuple(t.to(dev) for t in ck["carried"])
        torch.set_rng_state(ck["rng"])
        log.info("resuming %s at epoch %d, batch %d (update %d)", out, pos["epoch"] + 1, pos["batch"], pos["update"])
    atomic_write_text(out / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    steps = _StepLog(out / "steps.csv", keep_until=pos["update"])

    def save_checkpoint():
        buf = io.BytesIO()
        torch.save({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "position": pos,
            "history": history, "model_config": model_cfg,
            "carried": None if carried is None else tuple(t.detach().cpu() for t in carried),
            "rng": torch.get_rng_state(),
        }, buf)
        atomic_write_bytes(ckpt_path, buf.getvalue())

    log.info("training %s: %d params, %d utterances, %d frames, %d updates/epoch × %d epochs",
             model_cfg.get("family"), sum(p.numel() for p in params), U, train_corpus.num_frames,
             updates_per_epoch, epochs)
    stopped = False
    while pos["epoch"] < epochs and not stopped:
        epoch = pos["epoch"]
        sched = make_schedule(lengths, streams, chunk, delay, epoch_order(U, seed, epoch))
        if pos["batch"] == 0:
            carried = None
            pos["acc"] = [0.0, 0, 0, 0.0]
        model.train()
        bar = tqdm(total=len(sched), initial=pos["batch"], desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                   disable=not progress, leave=False, dynamic_ncols=True)
        t_start = time.perf_counter() - pos["acc"][3]
        lr = lr_at(pos["update"], updates_per_epoch, total_updates, tcfg)
        for b in range(pos["batch"], len(sched)):
            x, y, keep = get_batch(train_corpus, sched, b)
            x, y, keep = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True), keep.to(dev)
            carried = reset_streams(carried, keep)
            lr = lr_at(pos["update"], updates_per_epoch, total_updates, tcfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                logits, new_state = model(x, carried)
            logits = logits.float().reshape(-1, num_pdfs)
            yy = y.reshape(-1)
            valid = yy != IGNORE
            nvalid = int(valid.sum())
            loss_sum = F.cross_entropy(logits, yy, ignore_index=IGNORE, reduction="sum")
            ok = True
            if nvalid:
                loss = loss_sum / nvalid
                optimizer.zero_grad(set_to_none=True)
                if not torch.isfinite(loss):
                    ok = False
                else:
                    loss.backward()
                    if grad_clip:
                        gnorm = torch.nn.utils.clip_grad_norm_(params, float(grad_clip))
                        ok = bool(torch.isfinite(gnorm))
                    if ok:
                        optimizer.step()
            if not ok:
                pos["nan_run"] += 1
                log.warning("epoch %d batch %d: non-finite loss or gradient; step skipped, state reset (%d in a row)",
                            epoch + 1, b, pos["nan_run"])
                carried = None
                if pos["nan_run"] >= patience:
                    bar.close()
                    raise TrainingError(
                        f"{pos['nan_run']} non-finite losses in a row (epoch {epoch + 1}, update {pos['update']}); "
                        f"aborted. Check the features for NaN/inf or lower the learning rate (lr {lr:g}).")
            else:
                pos["nan_run"] = 0
                carried = new_state
            pos["update"] += 1
            pos["batch"] = b + 1
            if nvalid and ok:
                with torch.no_grad():
                    correct = int((logits.argmax(-1)[valid] == yy[valid]).sum())
                ls = float(loss_sum.detach())
                pos["acc"][0] += ls
                pos["acc"][1] += correct
                pos["acc"][2] += nvalid
                steps.add(epoch + 1, pos["update"], lr, ls / nvalid, correct / nvalid, nvalid)
            pos["acc"][3] = time.perf_counter() - t_start
            if progress and (b % 10 == 0 or b + 1 == len(sched)):
                a = pos["acc"]
                bar.set_postfix(loss=f"{a[0] / max(a[2], 1):.3f}", acc=f"{a[1] / max(a[2], 1):.3f}",
                                fps=f"{a[2] / max(a[3], 1e-9):.0f}", refresh=False)
            bar.update(1)
            if on_update is not None:
                on_update(pos["update"])
            every = int(tcfg["checkpoint_every"] or 0)
            if max_updates is not None and pos["update"] >= max_updates:
                stopped = True
            if stopped or (every and pos["update"] % every == 0):
                steps.flush()
                save_checkpoint()
            if stopped:
                break
        bar.close()
        if stopped and pos["batch"] < len(sched):
            break
        # end of epoch
        a = pos["acc"]
        row = {"epoch": epoch + 1, "updates": pos["update"], "lr": lr,
               "train_loss": a[0] / max(a[2], 1), "train_acc": a[1] / max(a[2], 1),
               "dev_loss": float("nan"), "dev_acc": float("nan"), "train_frames": a[2],
               "seconds": a[3], "frames_per_second": a[2] / max(a[3], 1e-9)}
        if dev_corpus is not None:
            row["dev_loss"], row["dev_acc"] = evaluate(model, dev_corpus, delay, int(tcfg["eval_streams"]),
                                                       int(tcfg["eval_chunk"]), dev, amp)
        history.append(row)
        log.info("epoch %d: train loss %.4f acc %.4f | dev loss %.4f acc %.4f | %.0f frames/s", epoch + 1,
                 row["train_loss"], row["train_acc"], row["dev_loss"], row["dev_acc"], row["frames_per_second"])
        monitor = row["dev_acc"] if dev_corpus is not None else row["train_acc"]
        if monitor > pos["best"]:
            pos["best"], pos["best_epoch"] = monitor, epoch + 1
            save_model_dir(out / "final", model, model_cfg, train_corpus.feat_dim, num_pdfs, delay,
                           cmvn=str(tcfg["cmvn"]),
                           extra={"training": {"epoch": epoch + 1, "dev_frame_accuracy": _num(row["dev_acc"]),
                                               "train_frame_accuracy": _num(row["train_acc"])}})
        write_log_csv(out / "log.csv", history)
        plot_curves(out / "training_curves.png", history)
        pos["epoch"], pos["batch"] = epoch + 1, 0
        steps.flush()
        save_checkpoint()
    steps.close()
    return {"epochs_done": pos["epoch"], "updates": pos["update"], "best_epoch": pos["best_epoch"],
            "best_monitor": pos["best"], "history": history, "stopped_early": stopped and pos["epoch"] < epochs}


def evaluate(model, corpus, delay: int, streams: int, chunk: int, device, amp: bool = False) -> tuple[float, float]:
    """Frame cross-entropy and accuracy of ``model`` on ``corpus`` (state carried through
    whole utterances, so the result does not depend on streams/chunk)."""
    import torch
    import torch.nn.functional as F

    from asr.nnet.state import reset_streams
    from asr.train.data import IGNORE, get_batch, make_schedule

    sched = make_schedule(corpus.lengths, streams, chunk, delay)
    was = model.training
    model.eval()
    loss = 0.0
    correct = frames = 0
    state = None
    with torch.no_grad():
        for b in range(len(sched)):
            x, y, keep = get_batch(corpus, sched, b)
            x, y = x.to(device), y.to(device)
            state = reset_streams(state, keep.to(device))
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
                logits, state = model(x, state)
            logits = logits.float().reshape(-1, logits.shape[-1])
            yy = y.reshape(-1)
            valid = yy != IGNORE
            loss += float(F.cross_entropy(logits, yy, ignore_index=IGNORE, reduction="sum"))
            correct += int((logits.argmax(-1)[valid] == yy[valid]).sum())
            frames += int(valid.sum())
    model.train(was)
    return loss / max(frames, 1), correct / max(frames, 1)


def _num(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def write_log_csv(path: Path, history: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOG_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def plot_curves(path: Path, history: list[dict[str, Any]]) -> None:
    """Train/dev loss and frame accuracy per epoch → PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((ax1, "loss", "cross-entropy"), (ax2, "acc", "frame accuracy")):
        ax.plot(ep, [r[f"train_{key}"] for r in history], "o-", label="train")
        devv = [r[f"dev_{key}"] for r in history]
        if not all(math.isnan(v) for v in devv):
            ax.plot(ep, devv, "s-", label="dev")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


class _StepLog:
    """``steps.csv``: one row per update (epoch, update, lr, loss, acc, frames). On resume the
    rows after the checkpoint are dropped, so the file matches an uninterrupted run."""

    HEADER = "epoch,update,lr,loss,acc,frames\n"

    def __init__(self, path: Path, keep_until: int):
        self.path = path
        kept = [self.HEADER]
        if keep_until and path.exists():
            with open(path, encoding="utf-8") as f:
                for line in f.readlines()[1:]:
                    parts = line.split(",")
                    if len(parts) == 6 and parts[1].isdigit() and int(parts[1]) <= keep_until:
                        kept.append(line)
        atomic_write_text(path, "".join(kept))
        self.f = open(path, "a", encoding="utf-8")

    def add(self, epoch: int, update: int, lr: float, loss: float, acc: float, frames: int) -> None:
        self.f.write(f"{epoch},{update},{lr:.6g},{loss!r},{acc:.6f},{frames}\n")

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        self.f.close()
