"""Training checkpoints (``EXP/checkpoint.pt``): where training stands (:class:`Position`)
and reading a checkpoint safely (tensors and plain data only; one-line errors for a
truncated or foreign file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr.errors import TrainingError
from asr.train.metrics import FrameMetrics

CHECKPOINT = "checkpoint.pt"


@dataclass
class Position:
    """Where training stands (saved in the checkpoint as a plain dict)."""

    epoch: int = 0  # epochs completed
    batch: int = 0  # batches of the current epoch done
    update: int = 0  # batches done in total (each rank/worker does one update per batch)
    nan_run: int = 0
    best: float = -1.0
    best_epoch: int = 0
    seconds: float = 0.0  # wall time of the current epoch so far
    cpu_seconds: float = 0.0  # CPU time of this process (all its threads) in the current epoch so far
    epoch_metrics: FrameMetrics = field(default_factory=FrameMetrics)  # of the current epoch, all ranks
    first_loss: float | None = None  # the first logged training loss (divergence guard)
    bad_utterances: int = 0  # unreadable utterances skipped in the current epoch

    def to_dict(self) -> dict[str, Any]:
        m = self.epoch_metrics
        return {"epoch": self.epoch, "batch": self.batch, "update": self.update, "nan_run": self.nan_run,
                "best": self.best, "best_epoch": self.best_epoch,
                "acc": [m.loss_sum, m.correct, m.frames, self.seconds], "cpu_seconds": self.cpu_seconds,
                "phone_correct": m.phone_correct, "first_loss": self.first_loss, "bad_utterances": self.bad_utterances}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Position":
        acc = d["acc"]
        return cls(epoch=int(d["epoch"]), batch=int(d["batch"]), update=int(d["update"]), nan_run=int(d["nan_run"]),
                   best=float(d["best"]), best_epoch=int(d["best_epoch"]), seconds=float(acc[3]),
                   cpu_seconds=float(d.get("cpu_seconds", 0.0)),
                   epoch_metrics=FrameMetrics(float(acc[0]), int(acc[1]), int(acc[2]), int(d.get("phone_correct", 0))),
                   first_loss=d.get("first_loss"), bad_utterances=int(d.get("bad_utterances", 0)))


CHECKPOINT_KEYS = ("model", "optimizer", "position", "history", "model_config", "carried", "rng")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load an ``asr train`` checkpoint (tensors and plain data only, no code); one-line
    errors for a truncated or foreign file."""
    import pickle
    import zipfile

    import torch

    try:
        with open(path, "rb") as f:
            head = f.read(4)
        is_zip = zipfile.is_zipfile(path)
    except OSError as e:
        raise TrainingError(f"{path}: cannot read the checkpoint ({e.strerror or e})") from None
    if not is_zip:  # torch.save writes a zip archive
        if head == b"PK\x03\x04":
            raise TrainingError(f"{path}: truncated or corrupt checkpoint (incomplete zip archive); delete it to "
                                "start over")
        raise TrainingError(f"{path}: not an asr training checkpoint (not a torch.save archive)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message advises weights_only=False: never pass that on
        raise TrainingError(f"{path}: not an asr training checkpoint (it holds objects other than tensors and "
                            "plain data; not loaded)") from None
    except Exception as e:  # zip members missing or damaged
        first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise TrainingError(f"{path}: truncated or corrupt checkpoint ({first}); delete it to start over") from None
    if not isinstance(ck, dict) or any(k not in ck for k in CHECKPOINT_KEYS):
        missing = [k for k in CHECKPOINT_KEYS if not isinstance(ck, dict) or k not in ck]
        raise TrainingError(f"{path}: not an asr training checkpoint (missing {', '.join(missing)})")
    return ck
