"""Worker processes that own the streams of ``asr serve``.

kaldi-decoder's search holds Python's GIL, so threads would run the decoders of all
streams on one core. ``StreamWorkers`` forks ``n`` processes after the model is loaded
(network weights and HCLG are shared copy-on-write, loaded once); each stream lives in
one worker (the least loaded when it starts), which runs its chunks in order. The event
loop talks to a worker over a pipe: ``call(worker, op, stream_id, payload)`` returns an
awaitable reply.

A stream is ``attach``-ed to a worker (``(worker, generation)``) with a callback. A worker
that dies is replaced and the server stays up, but its streams are lost: their pending
calls fail, later calls on them raise ``WorkerLost`` without reaching the new worker,
and each stream's callback runs once on its event loop so the server can tell the client.

Ops: ``new`` (payload: sample rate), ``pcm`` (bytes), ``finish``, ``close``. Replies of
``pcm``/``finish``: ``(segments, partial)``.

Shutdown (``close``) is bounded: a worker exits at EOF on its pipe (every worker closes
the pipe ends it does not own, so closing the parent's end is enough); one still alive
after ``grace`` seconds is terminated, then killed. Workers reset SIGTERM to its default
(a replacement is forked from a reader thread after asyncio installed its handlers) and
ignore SIGINT (a Ctrl-C reaches the whole process group; the parent decides).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing as mp
import os
import threading
import time

from asr.errors import AsrError, DecodeError

log = logging.getLogger(__name__)

LOST_MESSAGE = "recognition worker died; this stream is lost, reconnect"


class WorkerLost(AsrError):
    """The worker process that held a stream died; the stream cannot continue."""

    def __init__(self, message: str = LOST_MESSAGE):
        super().__init__(message)


def _reset_signals() -> None:
    import signal

    try:
        signal.set_wakeup_fd(-1)  # asyncio's self-pipe of the parent's loop: not ours
    except (ValueError, OSError):
        pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # terminate() must stop a worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop


def _drop_inherited_sockets(keep: int) -> None:
    """A replacement worker is forked while the server runs: it would hold copies of the
    listening socket, the clients' connections and the event loop's self-pipe, keeping
    them open in the kernel after the server closes them. Point every socket fd but our
    pipe at /dev/null (dup2, not close: the parent's Python objects copied into this
    process still name those fd numbers, which must not be reused for something else)."""
    import stat

    try:
        fds = [int(f) for f in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: leave them
        return
    null = None
    for fd in fds:
        if fd == keep or fd <= 2:
            continue
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            if null is None:
                null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, fd, inheritable=False)
        except OSError:
            continue
    if null is not None:
        os.close(null)


def _worker_main(model, conn, torch_threads: int, inherited: list) -> None:
    import torch

    _reset_signals()
    for c in inherited:  # the parent's pipe ends (its own and the other workers'): else no EOF
        try:
            c.close()
        except OSError:
            pass
    _drop_inherited_sockets(keep=conn.fileno())
    torch.set_num_threads(max(1, torch_threads))
    streams = {}
    while True:
        try:
            req, op, sid, payload = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if op == "new":
                streams[sid] = model.new_stream(payload, f"stream {sid}")
                value = None
            elif op == "pcm":
                s = _stream(streams, sid)
                value = (s.accept_pcm16(payload), s.partial)
            elif op == "finish":
                s = _stream(streams, sid)
                del streams[sid]
                value = (s.finish(), "")
            elif op == "close":
                streams.pop(sid, None)
                value = None
            else:
                raise DecodeError(f"unknown worker op {op!r}")
            conn.send((req, True, value))
        except AsrError as e:
            streams.pop(sid, None)
            conn.send((req, False, str(e)))
        except Exception as e:  # noqa: BLE001 - reported to the client; the worker goes on
            log.exception("stream %s: %s failed", sid, op)
            streams.pop(sid, None)
            conn.send((req, False, f"internal error: {type(e).__name__}: {e}"))


def _stream(streams: dict, sid):
    try:
        return streams[sid]
    except KeyError:
        raise DecodeError(f"stream {sid} is not open in this recognition worker") from None


class StreamWorkers:
    def __init__(self, model, n: int, torch_threads: int = 1):
        self.model = model
        self.n = max(1, int(n))
        self.torch_threads = torch_threads
        self._ctx = mp.get_context("fork")
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future, int]] = {}
        self._lock = threading.Lock()
        self._closing = False
        self.procs: list = [None] * self.n
        self.conns: list = [None] * self.n
        self.gen = [0] * self.n  # bumped when a worker is lost: its streams' generation is stale
        self.streams: list[dict] = [{} for _ in range(self.n)]  # sid -> (loop, on_lost)
        with self._lock:
            for i in range(self.n):
                self._start(i)

    @property
    def load(self) -> list[int]:
        """Streams per worker."""
        return [len(s) for s in self.streams]

    def _start(self, i: int) -> None:
        """Fork worker ``i`` (called with ``_lock`` held, so ``close`` sees every process)."""
        parent, child = self._ctx.Pipe()
        inherited = [c for c in self.conns if c is not None and not c.closed] + [parent]
        p = self._ctx.Process(target=_worker_main, args=(self.model, child, self.torch_threads, inherited),
                              daemon=True, name=f"asr-serve-worker-{i}")
        p.start()
        child.close()
        self.procs[i], self.conns[i] = p, parent
        threading.Thread(target=self._reader, args=(i, parent, p), daemon=True).start()

    def _reader(self, i: int, conn, proc) -> None:
        while True:
            try:
                req, ok, value = conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                item = self._pending.pop(req, None)
            if item is not None:
                loop, fut, _ = item
                loop.call_soon_threadsafe(_resolve, fut, ok, value)
        # the worker is gone: its streams are lost; fail their pending calls, replace it
        with self._lock:
            if self._closing or self.conns[i] is not conn:
                return  # close() reaps it: two threads waiting on one process leave one seeing it alive
            proc.join(1)  # reap it (it closed its pipe: it is exiting), for its exit code
            self.gen[i] += 1
            dead = [self._pending.pop(r) for r in [r for r, it in self._pending.items() if it[2] == i]]
            lost = self.streams[i]
            self.streams[i] = {}
            try:
                conn.close()
            except OSError:
                pass
            log.error("worker %d (pid %s) died (exit code %s); %d stream(s) lost; starting a new one",
                      i, proc.pid, proc.exitcode, len(lost))
            for loop, fut, _ in dead:
                _call_soon(loop, _resolve, fut, False, WorkerLost())
            for loop, on_lost in lost.values():
                _call_soon(loop, on_lost)
            self._start(i)

    def attach(self, sid, on_lost, loop: asyncio.AbstractEventLoop | None = None) -> tuple[int, int]:
        """Place a new stream on the least loaded worker: ``(worker, generation)``. If that
        worker dies, ``on_lost()`` runs once on ``loop`` (default: the running loop)."""
        loop = loop or asyncio.get_running_loop()
        with self._lock:
            i = min(range(self.n), key=lambda k: len(self.streams[k]))
            self.streams[i][sid] = (loop, on_lost)
            return i, self.gen[i]

    def detach(self, worker: int, sid) -> None:
        with self._lock:
            self.streams[worker].pop(sid, None)

    def pick(self) -> int:
        """The worker for a new stream (fewest streams)."""
        return min(range(self.n), key=lambda i: len(self.streams[i]))

    async def call(self, worker: int, op: str, sid: int, payload=None, gen: int | None = None):
        """Run ``op`` on stream ``sid`` in ``worker``. With ``gen`` (from ``attach``), a stream
        whose worker died since raises ``WorkerLost`` and nothing is sent."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        req = next(self._ids)
        with self._lock:
            if gen is not None and gen != self.gen[worker]:
                raise WorkerLost()
            if self._closing:
                raise AsrError("server is shutting down")
            self._pending[req] = (loop, fut, worker)
            conn = self.conns[worker]
        try:
            conn.send((req, op, sid, payload))
        except (OSError, ValueError) as e:
            with self._lock:
                self._pending.pop(req, None)
                lost = gen is not None and gen != self.gen[worker]
            if lost:
                raise WorkerLost() from None
            raise AsrError(f"recognition worker unavailable: {e}") from None
        return await fut

    def close(self, grace: float = 1.5) -> None:
        """Stop the workers: EOF on their pipes; after ``grace`` s terminate, then kill."""
        with self._lock:
            self._closing = True
            procs, conns = list(self.procs), list(self.conns)
            pending = list(self._pending.values())
            self._pending.clear()
        for c in conns:
            _shutdown(c)
        for loop, fut, _ in pending:
            _call_soon(loop, _resolve, fut, False, AsrError("server is shutting down"))
        deadline = time.monotonic() + grace
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(0.5)
            if p.is_alive():
                log.warning("worker pid %s ignored SIGTERM; killing it", p.pid)
                p.kill()
                p.join(1)


def _shutdown(conn) -> None:
    """Close our end of a worker's pipe so that the worker sees EOF now: a plain close()
    would not release the socket while the reader thread is blocked in recv() on it."""
    import socket

    try:
        s = socket.socket(fileno=os.dup(conn.fileno()))
    except (OSError, ValueError):  # already closed
        pass
    else:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
    try:
        conn.close()
    except OSError:
        pass


def _call_soon(loop, fn, *args) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # that loop is closed: nobody waits any more
        pass


def _resolve(fut: asyncio.Future, ok: bool, value) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    elif isinstance(value, BaseException):
        fut.set_exception(value)
    else:
        fut.set_exception(AsrError(value))
