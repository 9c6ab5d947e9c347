"""Synchronous updates: one process, or DDP over N ranks (the default update rule; the
asynchronous ones are in asr/train/asgd.py and asr/train/param_server.py).

An update rule gives the module the forward pass runs on, the loss normaliser, the
update count the learning rate is a function of, and ``apply(lr)`` after backward."""

from __future__ import annotations

from asr.train.config import TrainingConfig
from asr.train.distributed import DistContext


class SyncUpdate:
    """Synchronous SGD: one process, or DDP over N ranks (gradients all-reduced during
    backward; every rank applies the same update). The loss is normalised by the global
    frame count of the batch divided by N, because DDP averages gradients over ranks."""

    mode = "ddp"

    def __init__(self, model, optimizer, cfg: TrainingConfig, dist: DistContext, device):
        self.model = model
        self.optimizer = optimizer
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.grad_clip = cfg.grad_clip
        self.dist = dist
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            self.module = DistributedDataParallel(model, device_ids=ids)
        else:
            self.module = model

    def normaliser(self, local_frames: int, global_frames: int) -> float:
        return global_frames / self.dist.world_size

    def update_index(self, position_update: int) -> int:
        """The update count the learning rate is a function of."""
        return position_update

    updates_per_batch = 1

    def before_forward(self) -> None:
        pass

    def apply(self, lr: float) -> bool:
        """After backward: clip the (synchronised) gradient, check it, step. False = skipped."""
        return clipped_step(self.params, self.optimizer, self.grad_clip, lr)

    def sync_model(self) -> None:
        """Make ``model`` hold the current parameters (for evaluation and saving)."""

    def epoch_stats(self) -> dict[str, float]:
        return {}

    def close(self, failed: bool = False) -> None:
        pass


def clip_and_check(params, grad_clip: float | None) -> bool:
    """Clip the gradient norm (when configured); True when it is finite."""
    import torch

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return True
    if grad_clip:
        norm = torch.nn.utils.clip_grad_norm_(params, float(grad_clip))
    else:
        norm = torch.nn.utils.get_total_norm(grads)
    return bool(torch.isfinite(norm))


def clipped_step(params, optimizer, grad_clip: float | None, lr: float) -> bool:
    """Clip and check the gradient (:func:`clip_and_check`); when finite, step ``optimizer``
    with learning rate ``lr``. False = the step was skipped (non-finite gradient)."""
    if not clip_and_check(params, grad_clip):
        return False
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    return True
