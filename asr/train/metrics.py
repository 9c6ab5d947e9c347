"""Frame metrics of training and evaluation: summed cross-entropy, correct frames, frames
(and phone-correct frames), added up over batches and reduced over ranks."""

from __future__ import annotations

from dataclasses import dataclass

from asr.train.distributed import DistContext


@dataclass
class FrameMetrics:
    """Summed frame cross-entropy, correct frames and frames (+ phone-correct frames when a
    pdf→phone map is known), to be added up over batches and ranks."""

    loss_sum: float = 0.0
    correct: int = 0
    frames: int = 0
    phone_correct: int = 0

    def add(self, other: "FrameMetrics") -> None:
        self.loss_sum += other.loss_sum
        self.correct += other.correct
        self.frames += other.frames
        self.phone_correct += other.phone_correct

    @property
    def loss(self) -> float:
        return self.loss_sum / self.frames if self.frames else float("nan")

    @property
    def acc(self) -> float:
        return self.correct / self.frames if self.frames else float("nan")

    @property
    def phone_acc(self) -> float:
        return self.phone_correct / self.frames if self.frames else float("nan")

    def reduced(self, dist: DistContext) -> "FrameMetrics":
        """The sum over ranks."""
        if not dist.enabled:
            return FrameMetrics(self.loss_sum, self.correct, self.frames, self.phone_correct)
        import torch

        t = torch.tensor([self.loss_sum, self.correct, self.frames, self.phone_correct], dtype=torch.float64)
        dist.all_reduce(t)
        return FrameMetrics(float(t[0]), int(t[1]), int(t[2]), int(t[3]))


def evaluate(model, data, delay: int, streams: int, chunk: int, device, amp: bool = False,
             phone_map=None) -> FrameMetrics:
    """Frame cross-entropy and accuracy of ``model`` on ``data`` (state carried through
    whole utterances, so the result does not depend on streams/chunk)."""
    import torch
    import torch.nn.functional as F

    from asr.nnet.state import reset_streams
    from asr.train.data import IGNORE, BatchReader, make_schedule

    sched = make_schedule(data.lengths, streams, chunk, delay)
    was = model.training
    model.eval()
    m = FrameMetrics()
    state = None
    dev_type = torch.device(device).type
    with torch.no_grad():
        for batch in BatchReader(data, sched):
            x, y = batch.x.to(device), batch.y.to(device)
            state = reset_streams(state, batch.keep.to(device))
            with torch.autocast(device_type=dev_type, dtype=torch.bfloat16, enabled=amp):
                logits, state = model(x, state)
            logits = logits.float().reshape(-1, logits.shape[-1])
            yy = y.reshape(-1)
            valid = yy != IGNORE
            pred, ref = logits.argmax(-1)[valid], yy[valid]
            m.add(FrameMetrics(float(F.cross_entropy(logits, yy, ignore_index=IGNORE, reduction="sum")),
                               int((pred == ref).sum()), int(valid.sum()),
                               phone_map.correct(pred, ref) if phone_map is not None else 0))
    model.train(was)
    return m
