"""What ``asr train`` writes for people: ``log.csv`` (one row per epoch),
``training_curves.png`` and ``steps.csv`` (one row per update)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from asr.io.atomic import atomic_write_bytes, atomic_write_text

LOG_FIELDS = ["epoch", "updates", "lr", "train_loss", "train_acc", "dev_loss", "dev_acc", "train_frames",
              "seconds", "frames_per_second"]


def write_log_csv(path: Path, history: list[dict[str, Any]]) -> None:
    fields = list(LOG_FIELDS)
    for row in history:
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
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
        if key == "acc" and "dev_phone_acc" in history[0]:
            ax.plot(ep, [r["dev_phone_acc"] for r in history], "^--", label="dev (phone)")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


class StepLog:
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
