"""Asynchronous SGD (``asr train --mode asgd``), as Sak et al. 2014 trained their LSTMs.

Every worker (rank) runs its own B/N utterance streams of the global schedule, computes
the gradient of its own batch (cross-entropy averaged over its own frames), clips it and
applies it to the shared parameters at once, without waiting for the others. Two places
for the shared parameters:

- ``shared`` (one machine, Hogwild): the parameters *and the optimizer state* live in
  one shared-memory mapping (``/dev/shm``) that every worker process maps; a worker's
  ``optimizer.step()`` writes straight into it, unlocked.
- ``rpc`` (several machines): the parameters are split into shards, one per rank, each
  held by a parameter server on that rank with its own optimizer. After a batch a worker
  sends every shard's gradient to its server (torch.distributed.rpc) and receives that
  shard's fresh parameters; the server applies gradients in arrival order.

Optimizer state. Adam's moments belong to the parameters, not to a worker: they live
beside the parameters (in the shared mapping; on the shard's server), as the DistBelief
parameter servers kept AdaGrad's accumulators. So the moments average the gradients of
all workers in the order they were applied, the step count is the global update count,
and a checkpoint holds one optimizer state in the same format as a DDP or one-process
run (an ASGD checkpoint resumes in DDP mode and back).

The learning rate is the schedule's value at the global update count a worker observes.
Staleness — updates applied by other workers between a worker's read of the
parameters and its write — is measured for every update and logged per epoch
(``staleness_mean``, ``staleness_max`` in log.csv). Workers meet only for bookkeeping
(steps.csv every 50 updates, checkpoints, dev evaluation at the end of an epoch).
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

from asr.errors import ConfigError, TrainingError

log = logging.getLogger(__name__)


def make_asgd_rule(trainer, where: str):
    dist = trainer.dist
    if where == "auto":
        where = "shared" if dist.single_node and trainer.device.type == "cpu" else "rpc"
    if where == "shared":
        if not dist.single_node:
            raise ConfigError("--asgd-params shared needs every process on one machine; use rpc across machines")
        if trainer.device.type != "cpu":
            raise ConfigError("--asgd-params shared (Hogwild) runs on CPU; use --asgd-params rpc or --mode ddp on GPUs")
        return HogwildUpdate(trainer)
    from asr.train.param_server import ParameterServerUpdate

    return ParameterServerUpdate(trainer)


def materialise_optimizer_state(optimizer) -> None:
    """Create the optimizer's lazily made state (Adam moments, momentum buffers) now, as
    zeros, without changing any parameter (a step with zero gradients and lr 0)."""
    import torch

    params = [p for g in optimizer.param_groups for p in g["params"]]
    if all(optimizer.state.get(p) for p in params):
        return
    grads = [p.grad for p in params]
    lrs = [g["lr"] for g in optimizer.param_groups]
    for p in params:
        p.grad = torch.zeros_like(p)
    for g in optimizer.param_groups:
        g["lr"] = 0.0
    optimizer.step()
    for g, lr in zip(optimizer.param_groups, lrs):
        g["lr"] = lr
    for p, gr in zip(params, grads):
        p.grad = gr
    for st in optimizer.state.values():
        for v in st.values():
            if torch.is_tensor(v):
                v.zero_()


def state_tensors(model, optimizer) -> list[tuple[Any, str | None, Any]]:
    """``(param, state key or None, tensor)`` for every parameter and optimizer-state
    tensor, in an order every process computes alike."""
    import torch

    out = []
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        out.append((p, None, p))
    for p in params:
        st = optimizer.state.get(p, {})
        for k in sorted(st):
            if torch.is_tensor(st[k]):
                out.append((p, k, st[k]))
    for _, _, t in out:
        if t.dtype != torch.float32 or t.device.type != "cpu":
            raise TrainingError(f"ASGD shared memory holds float32 CPU tensors; got {t.dtype} on {t.device}")
    return out


class Staleness:
    """Per-epoch staleness statistics of this worker's updates, reduced over workers."""

    def __init__(self, dist):
        self.dist = dist
        self.reset()

    def reset(self) -> None:
        self.total, self.count, self.max = 0.0, 0, 0

    def add(self, stale: int) -> None:
        self.total += stale
        self.count += 1
        self.max = max(self.max, stale)

    def epoch_stats(self) -> dict[str, float]:
        import torch

        t = torch.tensor([self.total, self.count], dtype=torch.float64)
        mx = torch.tensor([float(self.max)], dtype=torch.float64)
        self.dist.all_reduce(t)
        self.dist.all_reduce(mx, op="max")
        self.reset()
        return {"staleness_mean": float(t[0] / max(t[1], 1)), "staleness_max": float(mx[0])}


class SharedBuffer:
    """One float32 buffer in shared memory (a file in /dev/shm mapped by every process of
    this machine); rank 0 creates and fills it, the others map it, then the file is unlinked
    (the mappings stay)."""

    def __init__(self, dist, numel: int, dtype, fill=None):
        import torch

        path = None
        if dist.is_main:
            shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
            fd, path = tempfile.mkstemp(prefix="asr-asgd-", dir=shm)
            os.close(fd)
            self.tensor = torch.from_file(path, shared=True, size=numel, dtype=dtype)
            if fill is not None:
                fill(self.tensor)
        path = dist.broadcast_object(path)
        if not dist.is_main:
            self.tensor = torch.from_file(path, shared=True, size=numel, dtype=dtype)
        dist.barrier()
        if dist.is_main:
            os.unlink(path)


class HogwildUpdate:
    """ASGD on one machine: parameters and optimizer state in shared memory, updated by
    every worker without locks."""

    mode = "asgd"

    def __init__(self, trainer):
        import torch

        self.dist = dist = trainer.dist
        self.model = self.module = trainer.model
        self.optimizer = trainer.optimizer
        self.grad_clip = trainer.cfg.grad_clip
        self.updates_per_batch = dist.world_size
        materialise_optimizer_state(self.optimizer)
        entries = state_tensors(self.model, self.optimizer)
        sizes = [t.numel() for _, _, t in entries]
        total = sum(sizes)

        def fill(flat):
            o = 0
            for (_, _, t), n in zip(entries, sizes):
                flat[o:o + n].copy_(t.detach().reshape(-1))
                o += n

        flat = SharedBuffer(dist, total, torch.float32, fill).tensor
        o = 0
        for (p, key, t), n in zip(entries, sizes):
            view = flat[o:o + n].view(t.shape)
            if key is None:
                p.data = view
            else:
                self.optimizer.state[p][key] = view
            o += n
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        done = trainer.position.update

        def fill_counts(c):
            c.fill_(done)

        # updates applied by each worker (only worker r writes slot r: no lock needed)
        self.counts = SharedBuffer(dist, dist.world_size, torch.int64, fill_counts).tensor
        self._read = 0
        self.staleness = Staleness(dist)
        if dist.is_main:
            log.info("ASGD (Hogwild): %d workers share %.1f MB of parameters and optimizer state in memory",
                     dist.world_size, total * 4 / 1e6)

    def normaliser(self, local_frames: int, global_frames: int) -> float:
        return local_frames

    def update_index(self, position_update: int) -> int:
        return int(self.counts.sum())

    def before_forward(self) -> None:
        self._read = int(self.counts.sum())

    def apply(self, lr: float) -> bool:
        from asr.train.updates import clipped_step

        ok = clipped_step(self.params, self.optimizer, self.grad_clip, lr)
        if ok:
            self.staleness.add(int(self.counts.sum()) - self._read)
            self.counts[self.dist.rank] += 1
        return ok

    def sync_model(self) -> None:
        pass

    def epoch_stats(self) -> dict[str, float]:
        return self.staleness.epoch_stats()

    def state_dicts(self) -> dict[str, Any]:
        """Copies of the shared model and optimizer state (checkpoint format of a one-process run)."""
        import torch

        opt = self.optimizer.state_dict()
        opt["state"] = {i: {k: (v.clone() if torch.is_tensor(v) else v) for k, v in st.items()}
                        for i, st in opt["state"].items()}
        return {"model": {k: v.clone() for k, v in self.model.state_dict().items()}, "optimizer": opt}

    def close(self, failed: bool = False) -> None:
        pass
