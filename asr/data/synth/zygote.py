"""Repeatable espeak-ng synthesis: a small fork server.

espeak-ng's wave generator keeps static state between calls (pitch-flutter index, wave
phase, echo buffer, sample counters), and no API resets it, so the same text comes out
slightly differently depending on what the process spoke before. ``FreshEspeak`` starts
a minimal Python process (ctypes and espeak only, so forking it is cheap) that
initialises the engine once and forks a child for every request: each text is
synthesised from the same just-initialised state, whatever ran before and in whichever
worker. Messages are length-prefixed pickles over the server's stdin/stdout.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from typing import BinaryIO

from asr.errors import AudioError

_HEADER = struct.Struct("<Q")


def _send(f: BinaryIO, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(_HEADER.pack(len(data)) + data)
    f.flush()


def _read_exact(f: BinaryIO, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        b = f.read(n - got)
        if not b:
            raise EOFError
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def _recv(f: BinaryIO):
    (n,) = _HEADER.unpack(_read_exact(f, _HEADER.size))
    return pickle.loads(_read_exact(f, n))


class FreshEspeak:
    """Client of the fork server: ``synthesize`` as ``Espeak.synthesize``, each call from a
    freshly initialised engine."""

    def __init__(self) -> None:
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from asr.data.synth.zygote import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )

    def synthesize(self, text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50,
                   seed: int = 0, ssml: bool = False):
        try:
            _send(self._proc.stdin, (text, voice, rate, pitch, pitch_range, seed, ssml))
            ok, result = _recv(self._proc.stdout)
        except (EOFError, BrokenPipeError, OSError) as e:
            raise AudioError(f"the espeak-ng synthesis server stopped ({e})") from None
        if not ok:
            raise AudioError(result)
        return result

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            self._proc.wait()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


def serve() -> None:
    """Server loop (run in its own process): one fork per request."""
    from asr.data.synth.espeak import Espeak

    rfile, wfile = sys.stdin.buffer, sys.stdout.buffer
    engine = Espeak.instance()
    while True:
        try:
            request = _recv(rfile)
        except EOFError:
            return
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: synthesise from the untouched engine, reply, exit
            code = 0
            try:
                os.close(rfd)
                try:
                    reply = (True, engine.synthesize(*request))
                except Exception as e:  # noqa: BLE001 - reported to the client
                    reply = (False, f"{type(e).__name__}: {e}")
                with os.fdopen(wfd, "wb") as f:
                    f.write(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(wfd)
        with os.fdopen(rfd, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        reply = pickle.loads(data) if data else (False, "synthesis process died")
        _send(wfile, reply)
