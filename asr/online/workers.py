"""Worker processes that own the streams of ``asr serve``.

kaldi-decoder's search holds Python's GIL, so threads would run the decoders of all
streams on one core. ``StreamWorkers`` forks ``n`` processes after the model is loaded
(network weights and HCLG are shared copy-on-write, loaded once); each stream lives in
one worker (the least loaded when it starts), which runs its chunks in order. The event
loop talks to a worker over a pipe: ``call(worker, op, stream_id, payload)`` returns an
awaitable reply. A worker that dies fails its pending calls with AsrError and is
replaced; the server stays up.

Ops: ``new`` (payload: sample rate), ``pcm`` (bytes), ``finish``, ``close``. Replies of
``pcm``/``finish``: ``(segments, partial)``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing as mp
import threading

from asr.errors import AsrError, DecodeError

log = logging.getLogger(__name__)


def _worker_main(model, conn, torch_threads: int, inherited: list) -> None:
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    for c in inherited:  # the other workers' parent ends: else their pipes never see EOF
        c.close()
    torch.set_num_threads(max(1, torch_threads))
    streams = {}
    while True:
        try:
            req, op, sid, payload = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if op == "new":
                streams[sid] = model.new_stream(payload)
                value = None
            elif op == "pcm":
                s = streams[sid]
                value = (s.accept_pcm16(payload), s.partial)
            elif op == "finish":
                s = streams.pop(sid)
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


class StreamWorkers:
    def __init__(self, model, n: int, torch_threads: int = 1):
        self.model = model
        self.n = max(1, int(n))
        self.torch_threads = torch_threads
        self._ctx = mp.get_context("fork")
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future, int]] = {}
        self._lock = threading.Lock()
        self.procs: list = [None] * self.n
        self.conns: list = [None] * self.n
        self.load = [0] * self.n
        for i in range(self.n):
            self._start(i)

    def _start(self, i: int) -> None:
        parent, child = self._ctx.Pipe()
        inherited = [c for c in self.conns if c is not None]
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
        # the worker is gone: fail its pending calls, replace it unless we are closing
        with self._lock:
            dead = [(r, it) for r, it in self._pending.items() if it[2] == i]
            for r, _ in dead:
                self._pending.pop(r)
        for _, (loop, fut, _) in dead:
            loop.call_soon_threadsafe(_resolve, fut, False, "recognition worker died")
        if self.conns[i] is conn and not getattr(self, "_closing", False):
            log.error("worker %d (pid %s) died (exit code %s); starting a new one", i, proc.pid, proc.exitcode)
            self.load[i] = 0
            self._start(i)

    def pick(self) -> int:
        """The worker for a new stream (fewest streams)."""
        return min(range(self.n), key=lambda i: self.load[i])

    async def call(self, worker: int, op: str, sid: int, payload=None):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        req = next(self._ids)
        with self._lock:
            self._pending[req] = (loop, fut, worker)
        try:
            self.conns[worker].send((req, op, sid, payload))
        except (OSError, ValueError) as e:
            with self._lock:
                self._pending.pop(req, None)
            raise AsrError(f"recognition worker unavailable: {e}") from None
        return await fut

    def close(self) -> None:
        self._closing = True
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.terminate()


def _resolve(fut: asyncio.Future, ok: bool, value) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(AsrError(value))
