"""The processes of one training run: who am I (rank, world size), the few collectives
the trainer needs, and the launcher behind ``asr train --workers N``.

A run is one process (``DistContext()``: rank 0 of 1, every collective a no-op) or N
processes started by torch's elastic launcher — ``torchrun`` or ``asr train --workers N``,
which calls the same launcher (``torch.distributed.run``) with the same arguments. Each
rank finds its place in the environment torchrun sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``TORCHELASTIC_RESTART_COUNT``) and joins the
process group: gloo on CPU, nccl on CUDA (from ``--device``).
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

from asr.errors import AsrError, ConfigError, TrainingError

log = logging.getLogger(__name__)

# how long a collective may wait for the other ranks (a crashed rank is noticed by the
# launcher long before this)
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)


@dataclass
class DistContext:
    """Rank and world of this process; collectives that are no-ops for a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    restart: int = 0  # elastic restarts so far (TORCHELASTIC_RESTART_COUNT)
    comm_device: str = "cpu"  # where collective tensors live (cuda for nccl)
    store: object = None  # the process group's key-value store (torch.distributed.Store)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def single_node(self) -> bool:
        return self.local_world_size == self.world_size

    def stream_slice(self, streams: int) -> tuple[int, int]:
        """Streams ``[lo, hi)`` of this rank out of ``streams`` (which the world size divides)."""
        per = streams // self.world_size
        return self.rank * per, (self.rank + 1) * per

    def all_reduce(self, t, op: str = "sum"):
        """Reduce ``t`` over ranks in place (returned on its own device)."""
        if not self.enabled:
            return t
        import torch.distributed as dist

        ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}
        x = t.to(self.comm_device)
        dist.all_reduce(x, op=ops[op])
        t.copy_(x.to(t.device))
        return t

    def all_gather_cat(self, t, dim: int):
        """The ranks' ``t`` (equal shapes) concatenated along ``dim`` in rank order."""
        if not self.enabled:
            return t
        import torch
        import torch.distributed as dist

        x = t.contiguous().to(self.comm_device)
        parts = [torch.empty_like(x) for _ in range(self.world_size)]
        dist.all_gather(parts, x)
        return torch.cat([p.to(t.device) for p in parts], dim=dim)

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0, device=None if self.comm_device == "cpu" else self.comm_device)
        return box[0]

    def all_gather_object(self, obj) -> list:
        """Every rank's ``obj`` (picklable), in rank order."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()


def replicated(e: Exception) -> Exception:
    """Mark an error every rank raises alike (only rank 0 prints it)."""
    e.replicated = True  # type: ignore[attr-defined]
    return e


def agree_on_error(ctx: DistContext, error: AsrError | None) -> None:
    """End a step that every rank does alike (reading the data, building the trainer) with
    the same outcome on every rank: when any rank failed, every rank raises the error of
    the first rank that failed (replicated: rank 0 prints it), naming that rank unless all
    ranks failed alike. A collective: every rank calls it at the same point. Without it a
    rank that fails alone (a data dir missing on its machine) would leave the others
    waiting in their next collective until the timeout."""
    if not ctx.enabled:
        if error is not None:
            raise error
        return
    import asr.errors

    reports = ctx.all_gather_object(None if error is None else (type(error).__name__, str(error)))
    failed = [(rank, report) for rank, report in enumerate(reports) if report is not None]
    if not failed:
        return
    rank, (kind, text) = failed[0]
    if len(failed) < ctx.world_size or any(report != failed[0][1] for _, report in failed):
        text = f"rank {rank}/{ctx.world_size}: {text}"
    cls = getattr(asr.errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, AsrError)):
        cls = TrainingError
    raise replicated(cls(text))


def launched_by_torchrun() -> bool:
    """True in a process started by torchrun / torch's elastic launcher."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def init_from_env(device: str) -> DistContext:
    """Join the process group of a launched run (gloo on CPU, nccl on CUDA); a single
    process when not launched."""
    if not launched_by_torchrun():
        return DistContext()
    env = os.environ
    try:
        ctx = DistContext(rank=int(env["RANK"]), world_size=int(env["WORLD_SIZE"]), local_rank=int(env["LOCAL_RANK"]),
                          local_world_size=int(env.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"])),
                          restart=int(env.get("TORCHELASTIC_RESTART_COUNT", "0")))
    except ValueError:
        raise ConfigError("RANK / WORLD_SIZE / LOCAL_RANK in the environment are not integers") from None
    if not 0 <= ctx.rank < ctx.world_size:
        raise ConfigError(f"RANK {ctx.rank} outside WORLD_SIZE {ctx.world_size}")
    if ctx.world_size == 1:
        return ctx
    import torch
    import torch.distributed as dist

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device available")
        torch.cuda.set_device(ctx.local_rank % torch.cuda.device_count())
        backend = "nccl"
        ctx.comm_device = f"cuda:{torch.cuda.current_device()}"
    else:
        backend = "gloo"
    try:
        ctx.store = _store(ctx)
        dist.init_process_group(backend=backend, store=ctx.store, rank=ctx.rank, world_size=ctx.world_size,
                                timeout=COLLECTIVE_TIMEOUT)
    except Exception as e:  # torch raises RuntimeError/DistStoreError with long texts
        raise TrainingError(f"rank {ctx.rank}/{ctx.world_size}: cannot join the {backend} process group: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return ctx


def _store(ctx: DistContext):
    """The launcher's key-value store, with keys private to this restart: after an elastic
    restart the keys of the killed round (e.g. a dead rank's address) must not be read."""
    from torch.distributed import PrefixStore, TCPStore

    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    try:
        host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    except (KeyError, ValueError):
        raise ConfigError("MASTER_ADDR / MASTER_PORT are not set (start with torchrun or asr train --workers N)") from None
    base = TCPStore(host, port, ctx.world_size, is_master=not agent_store and ctx.rank == 0, timeout=COLLECTIVE_TIMEOUT)
    return PrefixStore(f"asr-train/restart-{ctx.restart}", base)


def rpc_init_method(ctx: DistContext) -> str:
    """An ``init_method`` for ``torch.distributed.rpc.init_rpc`` that uses this run's store."""
    import torch.distributed as dist

    def handler(url, **kwargs):
        from torch.distributed import PrefixStore

        yield PrefixStore("rpc", ctx.store), ctx.rank, ctx.world_size

    try:
        dist.register_rendezvous_handler("asrtrain", handler)
    except RuntimeError:  # registered before in this process (tests): replace it
        from torch.distributed import rendezvous as R

        R._rendezvous_handlers["asrtrain"] = handler
    return "asrtrain://"


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


@dataclass
class LaunchOptions:
    """``asr train --workers N [--nnodes M --rdzv-endpoint HOST:PORT ...]`` → torchrun arguments."""

    workers: int
    nnodes: int = 1
    rdzv_endpoint: str | None = None
    rdzv_id: str = "asr-train"
    max_restarts: int = 0
    rdzv_timeout: int = 900

    def check(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1 (got {self.workers})")
        if self.nnodes < 1:
            raise ConfigError(f"--nnodes must be >= 1 (got {self.nnodes})")
        if self.max_restarts < 0:
            raise ConfigError(f"--max-restarts must be >= 0 (got {self.max_restarts})")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ConfigError(f"--nnodes {self.nnodes} needs --rdzv-endpoint HOST:PORT (a host every node can reach)")
        if self.rdzv_endpoint:
            host, _, port = self.rdzv_endpoint.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"--rdzv-endpoint {self.rdzv_endpoint!r}: expected HOST:PORT")

    def torchrun_args(self) -> list[str]:
        args = ["--nproc-per-node", str(self.workers), "--max-restarts", str(self.max_restarts)]
        if self.nnodes == 1 and not self.rdzv_endpoint:
            return ["--standalone", *args]
        return [*args, "--nnodes", str(self.nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", self.rdzv_endpoint,
                "--rdzv-id", self.rdzv_id, "--rdzv-conf", f"join_timeout={self.rdzv_timeout}"]

    @property
    def world_size(self) -> int:
        return self.workers * self.nnodes


def _first_failure(failure) -> tuple:
    """Sort key of ``(rank, ProcessFailure)``: the process whose failure took the run down,
    not one that failed because of it: first a process killed by a signal other than the
    launcher's SIGTERM (SIGKILL, SIGSEGV: its peers then exit with "lost contact"), then an
    error exit, then one the launcher stopped; among equals the earliest (timestamps are
    whole seconds, so ties are common), then the lowest rank."""
    import signal

    rank, f = failure
    kind = 2 if f.exitcode == -signal.SIGTERM else 1 if f.exitcode > 0 else 0
    return kind, f.timestamp, rank


def launch(opts: LaunchOptions, argv: list[str], threads: int | None = None, quiet_launcher: bool = True) -> None:
    """Run ``python -m asr ARGV`` in ``opts.workers`` processes per node through torch's
    elastic launcher (exactly what ``torchrun [opts] -m asr ARGV`` does). Raises a
    one-line TrainingError when the rendezvous or a worker fails."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError, RendezvousTimeoutError
    from torch.distributed.run import parse_args, run

    from asr.threads import default_threads

    opts.check()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads or default_threads(opts.workers)))
    if quiet_launcher:  # the launcher's own INFO/WARNING chatter (banners, SIGTERM notices)
        for name in ("torch.distributed.run", "torch.distributed.elastic", "torch.distributed.launcher"):
            logging.getLogger(name).setLevel(logging.CRITICAL)  # failures are summed up in our one line
    try:
        run(parse_args([*opts.torchrun_args(), "-m", "asr", *argv]))
    except RendezvousTimeoutError:
        raise TrainingError(f"rendezvous at {opts.rdzv_endpoint} timed out after {opts.rdzv_timeout} s: not all "
                            f"{opts.nnodes} nodes joined (--nnodes {opts.nnodes}); start the same command on every "
                            "node, or lower --nnodes") from None
    except RendezvousError as e:
        raise TrainingError(f"rendezvous at {opts.rdzv_endpoint or 'localhost'} failed: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    except ChildFailedError as e:
        failures = sorted(e.failures.items())
        rank, first = min(failures, key=_first_failure)
        how = f"signal {first.signal_name()}" if first.exitcode < 0 else f"exit code {first.exitcode}"
        raise TrainingError(f"{len(failures)} of {opts.world_size} training process(es) failed "
                            f"(first: rank {rank}, {how}); its error is printed above") from None
