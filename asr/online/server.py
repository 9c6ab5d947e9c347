"""``asr serve``: a WebSocket recognition server speaking the Vosk server protocol.

Protocol (vosk-server's ``asr_server.py``; existing Vosk clients work unchanged)::

    client -> {"config": {"sample_rate": 16000}}        (optional; default: the model's rate)
    client -> binary chunk: little-endian 16-bit mono PCM
    server <- {"partial": "words so far"}                (one reply per chunk), or at an endpoint
    server <- {"text": "...", "result": [{"word": w, "start": s, "end": s, "conf": p}, ...]}
    client -> {"eof": 1}
    server <- {"text": "...", "result": [...]}           (the last segment; then the server closes)

Anything wrong with a message gets ``{"error": "..."}`` and the connection stays usable
(malformed JSON, unknown messages, a bad sample rate, a config after audio, an odd byte
count, more audio than ``max_message_bytes`` at the model's rate); a message over ``max_message_bytes`` closes that connection with code 1009; a
client that goes away mid-utterance just frees its stream; one that sends nothing for
``idle_timeout`` seconds gets an error message and close code 1008. If the worker process holding a
stream dies, that client gets ``{"error": "recognition worker died; this stream is lost,
reconnect"}`` and close code 1011 (its later messages never reach the replacement worker);
the server logs one line per lost stream. The server itself stays up.

Concurrency: one asyncio event loop for the network; the model is loaded once, then
``workers`` processes are forked (``StreamWorkers``: weights and graph shared
copy-on-write; processes because kaldi-decoder's search holds the GIL); every connection
has its own ``OnlineStream`` (features, network state, decoder) in the least loaded
worker, which runs its chunks in order; more streams than workers share them. At most ``max_clients`` streams are served at
once; a client beyond that is refused at once (close code 1013, "try again later") with
a message saying so. ``GET /`` serves a page that records the browser's microphone and
shows partials and finals.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import itertools
from dataclasses import dataclass
from importlib import resources

from asr.errors import AsrError
from asr.online.workers import LOST_MESSAGE, StreamWorkers, WorkerLost

log = logging.getLogger(__name__)

MIN_RATE, MAX_RATE = 1000, 384000


@dataclass
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 2700  # vosk-server's default port
    workers: int = 2
    max_clients: int = 8
    max_message_bytes: int = 1 << 20
    torch_threads: int = 1
    idle_timeout: float = 60.0  # seconds without a message before the connection is closed (0: never)


def segments_message(segs) -> dict:
    """One Vosk result message for the segments that ended in one chunk (usually one)."""
    words = [w for s in segs for w in s.words]
    msg = {"text": " ".join(w.word for w in words)}
    if words:
        msg["result"] = [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3),
                          "conf": round(w.conf, 6)} for w in words]
    return msg


class RecognitionServer:
    def __init__(self, model, opts: ServerOptions | None = None):
        self.model = model  # asr.online.recognizer.OnlineModel
        self.opts = opts or ServerOptions()
        self.workers = StreamWorkers(model, self.opts.workers, self.opts.torch_threads)
        self._sids = itertools.count(1)
        self.active = 0
        self.served = 0
        self.refused = 0
        self._page = resources.files("asr.online").joinpath("static/index.html").read_text(encoding="utf-8")

    # ------------------------------------------------------------- HTTP part
    def process_request(self, connection, request):
        """Plain HTTP GET (no WebSocket upgrade): the web page, or 404."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        path = request.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            resp = connection.respond(200, self._page)
            del resp.headers["Content-Type"]
            resp.headers["Content-Type"] = "text/html; charset=utf-8"
            return resp
        return connection.respond(404, f"not found: {path}\n")

    # -------------------------------------------------------- WebSocket part
    async def handler(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        peer = _peer(ws)
        if self.active >= self.opts.max_clients:
            self.refused += 1
            reason = f"server busy: {self.active} streams active (max {self.opts.max_clients}); try again later"
            log.warning("%s refused: %s", peer, reason)
            await _close_with_error(ws, 1013, reason)
            return
        self.active += 1
        self.served += 1
        sid = next(self._sids)
        worker = gen = None  # the worker process that owns this stream (and its generation), once audio starts
        lost = None  # the task that tells the client its stream was lost with its worker
        t0 = time.perf_counter()
        rate = self.model.sample_rate
        audio_s = busy_s = 0.0
        log.info("%s connected (%d active)", peer, self.active)

        def on_lost():  # on this loop, once, when the worker died (or a call found it dead)
            nonlocal lost
            if lost is None:
                lost = asyncio.ensure_future(self._report_lost(ws, peer, sid, worker))

        async def call(op, payload=None):
            nonlocal worker, gen, busy_s
            if worker is None:
                worker, gen = self.workers.attach(sid, on_lost)
                await self.workers.call(worker, "new", sid, rate, gen=gen)
            t = time.perf_counter()
            try:
                return await self.workers.call(worker, op, sid, payload, gen=gen)
            finally:
                busy_s += time.perf_counter() - t

        finished = False
        try:
            async for message in _messages(ws, self.opts.idle_timeout):
                if lost is not None:
                    break
                if isinstance(message, str):
                    try:
                        obj = json.loads(message)
                    except (json.JSONDecodeError, RecursionError) as e:  # RecursionError: nested too deeply
                        await ws.send(json.dumps({"error": f"malformed JSON message: {e}"}))
                        continue
                    if isinstance(obj, dict) and "config" in obj:
                        err, new_rate = _parse_config(obj["config"], worker is not None)
                        if err:
                            await ws.send(json.dumps({"error": err}))
                        else:
                            rate = new_rate or rate
                        continue
                    if isinstance(obj, dict) and "eof" in obj:
                        segs, _ = await call("finish")
                        finished = True
                        await ws.send(json.dumps(segments_message([s for s in segs if s.words] or segs[-1:])))
                        await ws.close()
                        break
                    await ws.send(json.dumps({"error": "unknown message (expected {\"config\": {...}}, binary "
                                                       "16-bit PCM, or {\"eof\": 1})"}))
                    continue
                if len(message) % 2:
                    await ws.send(json.dumps({"error": f"audio chunk of {len(message)} bytes is not a whole "
                                                       f"number of 16-bit samples"}))
                    continue
                max_s = self.opts.max_message_bytes / 2 / self.model.sample_rate  # the work one message may ask
                if len(message) / 2 / rate > max_s:  # a low sample_rate must not multiply it (1000 Hz: 16x)
                    await ws.send(json.dumps({"error": f"audio chunk of {len(message) / 2 / rate:.1f} s at {rate} Hz: "
                                                       f"at most {max_s:.1f} s of audio per message"}))
                    continue
                segs, partial = await call("pcm", bytes(message))
                audio_s += len(message) / 2 / rate
                await ws.send(json.dumps(segments_message(segs) if segs else {"partial": partial}))
        except ConnectionClosed as e:
            if lost is None:
                log.info("%s went away (%s)", peer, e)
        except WorkerLost:
            on_lost()  # the client hears it from _report_lost, once
        except TimeoutError:  # a client that holds a stream (one of max_clients) and sends nothing
            reason = f"no message for {self.opts.idle_timeout:g} s: closing the connection"
            log.warning("%s: %s", peer, reason)
            await _close_with_error(ws, 1008, reason)
        except AsrError as e:
            finished = True  # the worker dropped the stream
            log.warning("%s: %s", peer, e)
            try:
                await ws.send(json.dumps({"error": str(e)}))
                await ws.close(1011, str(e)[:120])
            except ConnectionClosed:
                pass
        finally:
            self.active -= 1
            if lost is not None:
                await lost
            elif worker is not None:
                self.workers.detach(worker, sid)
                if not finished:
                    try:
                        await self.workers.call(worker, "close", sid, gen=gen)
                    except AsrError:
                        pass
            log.info("%s done: %.2f s audio, %.2f s answering (RTF %.3f), %.1f s connected", peer, audio_s,
                     busy_s, busy_s / audio_s if audio_s else 0.0, time.perf_counter() - t0)

    async def _report_lost(self, ws, peer, sid, worker) -> None:
        """One line in the log, one error message to the client, then close (1011)."""
        from websockets.exceptions import ConnectionClosed

        log.warning("%s: stream %s lost: recognition worker %s died; closing the connection", peer, sid, worker)
        try:
            await ws.send(json.dumps({"error": LOST_MESSAGE}))
            await ws.close(1011, LOST_MESSAGE)
        except ConnectionClosed:
            pass

    async def serve(self, ready: asyncio.Future | None = None, stop: asyncio.Future | None = None) -> None:
        from websockets.asyncio.server import serve

        try:  # the workers are stopped also when the port cannot be bound (else: 'worker died' at exit)
            async with serve(self.handler, self.opts.host, self.opts.port, process_request=self.process_request,
                             max_size=self.opts.max_message_bytes) as server:
                port = server.sockets[0].getsockname()[1]
                log.info("serving on ws://%s:%d (page http://%s:%d/), %d workers, at most %d streams",
                         self.opts.host, port, self.opts.host, port, self.opts.workers, self.opts.max_clients)
                if ready is not None and not ready.done():
                    ready.set_result(port)
                await (stop if stop is not None else asyncio.get_running_loop().create_future())
        finally:
            self.workers.close()


async def _messages(ws, idle_timeout: float):
    """The client's messages until it closes; TimeoutError after ``idle_timeout`` seconds
    without one (0: wait for ever)."""
    from websockets.exceptions import ConnectionClosedOK

    while True:
        try:
            yield await asyncio.wait_for(ws.recv(), idle_timeout or None)  # cancelling recv loses nothing
        except ConnectionClosedOK:
            return


async def _close_with_error(ws, code: int, reason: str) -> None:
    """Tell the client why (an ``{"error": ...}`` message), then close with ``code``; a client
    already gone is fine."""
    from websockets.exceptions import ConnectionClosed

    try:
        await ws.send(json.dumps({"error": reason}))
        await ws.close(code, reason)
    except ConnectionClosed:
        pass


def _parse_config(cfg, started: bool) -> tuple[str | None, int | None]:
    if not isinstance(cfg, dict):
        return "config must be an object, e.g. {\"config\": {\"sample_rate\": 16000}}", None
    if started:
        return "config after audio: send it before the first chunk", None
    rate = cfg.get("sample_rate")
    if rate is None:
        return None, None
    try:
        r = float(rate)
    except (TypeError, ValueError):
        return f"sample_rate must be a number, got {rate!r}", None
    if not (MIN_RATE <= r <= MAX_RATE) or r != int(r):
        return f"unsupported sample_rate {rate!r} (a whole number of Hz in {MIN_RATE}..{MAX_RATE})", None
    return None, int(r)


def _peer(ws) -> str:
    try:
        host, port = ws.remote_address[:2]
        return f"{host}:{port}"
    except Exception:  # noqa: BLE001 - only for log lines
        return "client"


def run_server(model_dir, graph_dir=None, stream_opts=None, opts: ServerOptions | None = None) -> None:
    """Load the model and serve until interrupted."""
    import torch

    from asr.online.recognizer import OnlineModel

    opts = opts or ServerOptions()
    torch.set_num_threads(max(1, opts.torch_threads))
    model = OnlineModel(model_dir, graph_dir, stream_opts)
    server = RecognitionServer(model, opts)

    async def main():
        import signal

        stop = asyncio.get_running_loop().create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        await server.serve(stop=stop)

    asyncio.run(main())
