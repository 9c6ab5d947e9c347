"""``asr transcribe --stream``: audio files or raw PCM from stdin through an OnlineStream.

A file is read whole and fed in chunks of ``chunk_seconds`` (optionally paced at real
time); ``-`` reads raw little-endian 16-bit mono PCM from stdin at ``sample_rate`` as it
arrives (``arecord -f S16_LE -r 16000 -c 1 -t raw | asr transcribe --stream -``). On a
terminal the open segment's partial result is shown on one updating line; every
endpointed segment prints a final ``<id> <words>`` line (with ``ctm``, its CTM lines too).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np

from asr.errors import AsrError

log = logging.getLogger(__name__)


class _Printer:
    """Finals on stdout; partials on one updating line when stdout is a terminal."""

    def __init__(self, out, ctm_out=None, show_partials: bool | None = None):
        self.out = out
        self.ctm_out = ctm_out
        self.tty = out.isatty() if show_partials is None else show_partials
        self._shown = False

    def partial(self, uid: str, text: str) -> None:
        if self.tty and (text or self._shown):
            self.out.write(f"\r\x1b[K{uid} {text}" if text else "\r\x1b[K")
            self.out.flush()
            self._shown = bool(text)

    def final(self, uid: str, seg) -> None:
        if self._shown:
            self.out.write("\r\x1b[K")
            self._shown = False
        self.out.write(f"{uid} {seg.text}".rstrip() + "\n")
        self.out.flush()
        if self.ctm_out is not None:
            self.ctm_out.write("".join(f"{uid} 1 {w.start:.2f} {w.end - w.start:.2f} {w.word} {w.conf:.2f}\n"
                                       for w in seg.words))
            self.ctm_out.flush()


def _chunks_from_file(path: str, chunk_seconds: float, fbank, channel: int = 0):
    from asr.data.audio import check_transcribable, extract, is_digital_silence, load_recording

    rec = load_recording(path)
    check_transcribable(path, len(rec.samples), rec.rate, fbank, int((~np.isfinite(rec.samples)).sum()))
    if rec.samples.shape[1] > 1:
        log.info("%s: %d channels: using %s (--channel)", path, rec.samples.shape[1],
                 "their average" if channel == -1 else f"channel {channel}")
    x = extract(rec, None, channel, source=path)  # the offline channel rule; the stream resamples
    is_digital_silence(path, x)  # warned as offline; streamed all the same (no words)
    n = max(1, int(round(chunk_seconds * rec.rate)))
    return rec.rate, (x[i:i + n] for i in range(0, len(x), n)), []


def _chunks_from_stdin(sample_rate: int, chunk_seconds: float, stdin=None):
    f = stdin if stdin is not None else sys.stdin.buffer
    nbytes = 2 * max(1, int(round(chunk_seconds * sample_rate)))

    def gen():
        rest = b""
        while True:
            data = f.read1(nbytes) if hasattr(f, "read1") else f.read(nbytes)
            if not data:
                break
            data = rest + data
            cut = len(data) - len(data) % 2
            rest = data[cut:]
            if cut:
                yield np.frombuffer(data[:cut], dtype="<i2").astype(np.float32) / 32768.0
        if rest:  # reported after the transcript (the complete samples were recognised)
            odd.append(len(rest))

    odd: list[int] = []
    return sample_rate, gen(), odd


def transcribe_stream(model, inputs: list[str], sample_rate: int = 16000, chunk_seconds: float = 0.1,
                      realtime: bool = False, out=None, ctm_out=None, stdin_id: str = "stdin",
                      show_partials: bool | None = None, channel: int = 0):
    """Yield ``(id, error | None)`` per input after printing its finals (see module doc)."""
    pr = _Printer(out or sys.stdout, ctm_out, show_partials)
    for spec in inputs:
        uid = stdin_id if spec == "-" else Path(spec).stem
        printed = False
        try:
            if spec == "-":
                rate, chunks, odd = _chunks_from_stdin(sample_rate, chunk_seconds)
            else:
                rate, chunks, odd = _chunks_from_file(spec, chunk_seconds, model.fbank, channel)
            stream = model.new_stream(rate, uid)
            t0 = time.perf_counter()
            fed = 0.0
            total = 0
            for x in chunks:
                total += len(x)
                if realtime and spec != "-":
                    fed += len(x) / rate
                    delay = t0 + fed - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                for seg in stream.accept_waveform(x):
                    if seg.words:
                        pr.final(uid, seg)
                        printed = True
                pr.partial(uid, stream.partial)
            if spec == "-":  # a file was checked before streaming; stdin once it ended
                from asr.data.audio import check_transcribable

                check_transcribable("stdin", total, rate, model.fbank)
            segs = stream.finish()
            for i, seg in enumerate(segs):
                if seg.words or (not printed and i == len(segs) - 1):
                    pr.final(uid, seg)
                    printed = True
            if odd:
                log.warning("stdin: the PCM stream ended in the middle of a 16-bit sample (its last byte was "
                            "dropped; the transcript is of the samples before it)")
            yield uid, None
        except AsrError as e:
            if pr._shown:
                pr.out.write("\n")
                pr._shown = False
            name = "stdin" if spec == "-" else spec
            yield uid, str(e) if str(e).startswith(f"{name}:") or name in str(e) else f"{name}: {e}"
