"""ASGD across machines: parameter-server shards on ``torch.distributed.rpc``
(``asr train --mode asgd --asgd-params rpc``; the default for ASGD across machines).

The parameters are split into N shards (whole tensors, balanced by size; every rank
computes the same split), and rank k serves shard k: it holds the shard's parameters and
an optimizer over them (Adam moments live with their parameters, see asr/train/asgd.py).
A worker, after the backward pass of its batch, clips its gradient and sends each
shard's part to that shard's server (``rpc_async``, all shards at once); the server
applies it under the shard's lock at the learning rate the worker sends, bumps the
shard's version and returns the fresh parameters, which the worker copies into its model
for the next batch. Staleness = the shard's version at apply time minus the version the
worker last read. The shard on a worker's own rank is served by a direct call.

Started by the same command as everything else (torchrun or ``asr train --workers N``);
the RPC agent joins through the launcher's rendezvous (``MASTER_ADDR``/``MASTER_PORT``).
"""

from __future__ import annotations

import logging
import threading
import warnings
from typing import Any

log = logging.getLogger(__name__)

_SERVERS: dict[int, "ShardServer"] = {}  # shards served by this process


class ShardServer:
    """Parameters of one shard and their optimizer."""

    def __init__(self, tensors: list, states: list[dict[str, Any]], cfg):
        import torch

        from asr.train.schedule import make_optimizer

        self.params = [torch.nn.Parameter(t.detach().cpu().clone()) for t in tensors]
        self.optimizer = make_optimizer(self.params, cfg)
        for p, st in zip(self.params, states):
            if st:
                self.optimizer.state[p] = {k: (v.detach().cpu().clone() if torch.is_tensor(v) else v)
                                           for k, v in st.items()}
        self.version = 0
        self.lock = threading.Lock()

    def push(self, grads: list | None, lr: float, read_version: int):
        with self.lock:
            stale = self.version - read_version
            if grads is not None:
                for p, g in zip(self.params, grads):
                    p.grad = g
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                self.optimizer.step()
                self.version += 1
            return [p.detach().clone() for p in self.params], self.version, stale

    def state(self):
        import torch

        with self.lock:
            states = []
            for p in self.params:
                st = self.optimizer.state.get(p, {})
                states.append({k: (v.clone() if torch.is_tensor(v) else v) for k, v in st.items()})
            return [p.detach().clone() for p in self.params], states


# RPC entry points (module-level functions, run in the serving process)
def _push(shard: int, grads, lr: float, read_version: int):
    return _SERVERS[shard].push(grads, lr, read_version)


def _state(shard: int):
    return _SERVERS[shard].state()


def split_shards(sizes: list[int], n: int) -> list[list[int]]:
    """Parameter indices per shard: largest first onto the lightest shard (deterministic)."""
    shards: list[list[int]] = [[] for _ in range(n)]
    load = [0] * n
    for i in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        k = min(range(n), key=lambda k: (load[k], k))
        shards[k].append(i)
        load[k] += sizes[i]
    return [sorted(s) for s in shards]


class ParameterServerUpdate:
    """ASGD update rule with parameter-server shards over RPC."""

    mode = "asgd"

    def __init__(self, trainer):
        import torch.distributed.rpc as rpc

        from asr.train.asgd import Staleness, materialise_optimizer_state
        from asr.train.distributed import rpc_init_method

        self.dist = dist = trainer.dist
        self.model = self.module = trainer.model
        self.device = trainer.device
        self.grad_clip = trainer.cfg.grad_clip
        self.updates_per_batch = dist.world_size
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        self.optimizer = trainer.optimizer
        materialise_optimizer_state(self.optimizer)
        self.shards = split_shards([p.numel() for p in self.params], dist.world_size)
        mine = self.shards[dist.rank]
        _SERVERS.clear()
        _SERVERS[dist.rank] = ShardServer([self.params[i] for i in mine],
                                          [self.optimizer.state.get(self.params[i], {}) for i in mine], trainer.cfg)
        _SERVERS[dist.rank].version = trainer.position.update * dist.world_size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            rpc.init_rpc(self._name(dist.rank), rank=dist.rank, world_size=dist.world_size,
                         rpc_backend_options=rpc.TensorPipeRpcBackendOptions(init_method=rpc_init_method(dist)))
        self._rpc_up = True
        dist.barrier()
        self.version = [0] * dist.world_size
        self._pull()
        self.staleness = Staleness(dist)
        if dist.is_main:
            sizes = [sum(self.params[i].numel() for i in s) for s in self.shards]
            log.info("ASGD (parameter server over RPC): %d shards of %s parameters", len(sizes),
                     "/".join(str(s) for s in sizes))

    @staticmethod
    def _name(rank: int) -> str:
        return f"asr-ps{rank}"

    def _call(self, k: int, fn, *args):
        """Future of ``fn(k, *args)`` on shard k's server (a direct call for our own shard)."""
        import torch.distributed.rpc as rpc
        from torch.futures import Future

        if k == self.dist.rank:
            fut: Future = Future()
            fut.set_result(fn(k, *args))
            return fut
        return rpc.rpc_async(self._name(k), fn, args=(k, *args))

    def _exchange(self, grads_by_shard: list | None, lr: float) -> list[int]:
        futs = [self._call(k, _push, None if grads_by_shard is None else grads_by_shard[k], lr, self.version[k])
                for k in range(len(self.shards))]
        stales = []
        for k, fut in enumerate(futs):
            params, version, stale = fut.wait()
            for i, t in zip(self.shards[k], params):
                self.params[i].data.copy_(t.to(self.params[i].device))
            self.version[k] = version
            stales.append(stale)
        return stales

    def _pull(self) -> None:
        self._exchange(None, 0.0)

    def normaliser(self, local_frames: int, global_frames: int) -> float:
        return local_frames

    def update_index(self, position_update: int) -> int:
        return self.version[0]

    def before_forward(self) -> None:
        pass

    def apply(self, lr: float) -> bool:
        from asr.train.updates import clip_and_check

        ok = clip_and_check(self.params, self.grad_clip)
        if ok:
            import torch

            grads = [[(self.params[i].grad if self.params[i].grad is not None
                       else torch.zeros_like(self.params[i])).detach().cpu() for i in s] for s in self.shards]
            self.staleness.add(max(self._exchange(grads, lr)))
        return ok

    def sync_model(self) -> None:
        self._pull()

    def epoch_stats(self) -> dict[str, float]:
        return self.staleness.epoch_stats()

    def state_dicts(self) -> dict[str, Any]:
        """Model and optimizer state gathered from all shards, in the one-process format
        (only rank 0 asks; the others return what they have)."""
        if not self.dist.is_main:
            return {"model": None, "optimizer": None}
        model_sd = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        opt_sd = self.optimizer.state_dict()
        opt_sd["state"] = {}
        for k in range(len(self.shards)):
            params, states = self._call(k, _state).wait()
            for i, t, st in zip(self.shards[k], params, states):
                model_sd[self.names[i]] = t
                if st:
                    opt_sd["state"][i] = st
        return {"model": model_sd, "optimizer": opt_sd}

    def close(self, failed: bool = False) -> None:
        import torch.distributed.rpc as rpc

        if self._rpc_up:
            self._rpc_up = False
            rpc.shutdown(graceful=not failed)  # a failed rank must not wait for the others
