"""Reading audio as Kaldi's wav.scp describes it.

A wav.scp value is either a file path (wav, flac, ogg, anything libsndfile reads) or a
command ending in ``|`` whose stdout is the audio (``sox in.sph -t wav - |``, ``flac -dc x.flac |``),
run through the shell as Kaldi does. ``read_audio`` returns float32 samples in [-1, 1] of one
channel at the target rate (resampled with soxr when the file's rate differs); multiply by
32768 for Kaldi's int16 scale (exact for 16-bit files).

Segments (``segments`` file: ``utt rec start end`` in seconds) are cut from the recording at
its own rate, before resampling, as Kaldi's extract-segments does (sample = int(t * rate);
``end`` of -1 or None means the end of the recording). A segment that ends after the
recording by at most ``max_overshoot`` seconds (Kaldi's default 0.5 s) is truncated to the
end; further, or a segment starting at/after the end, is an AudioError.

A wav file (or a pipe's wav) holding fewer samples than its header declares (more than 10 ms
short: a truncated copy or download) is an AudioError, not the part that is there: its
transcript would not match (libsndfile reads it without a word; Kaldi's reader warns).

Every failure is an ``AudioError`` whose message names the utterance (or file) and the cause;
a failing pipe's message includes the tail of the command's stderr.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
from dataclasses import dataclass

import numpy as np

from asr.errors import AudioError

log = logging.getLogger(__name__)

MAX_OVERSHOOT = 0.5  # seconds a segment may run past the recording end (Kaldi extract-segments)
_STDERR_TAIL = 600  # characters of a failing command's stderr quoted in the error


@dataclass
class Recording:
    """A decoded recording: ``samples`` float32 [num_samples, num_channels] at ``rate``."""

    samples: np.ndarray
    rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


def is_pipe(spec: str) -> bool:
    """True when a wav.scp value is a command (``... |``)."""
    return spec.rstrip().endswith("|")


def load_recording(spec: str | os.PathLike, utt: str | None = None) -> Recording:
    """Decode a whole recording from a path or a ``cmd |`` pipe (all channels)."""
    import soundfile as sf

    spec = str(spec)
    name = _prefix(utt)
    if is_pipe(spec):
        data = _run_pipe(spec.rstrip()[:-1].strip(), name)
        source: object = io.BytesIO(data)
        if not data:
            raise AudioError(f"{name}command produced no audio: {spec}")
    else:
        source = spec
    try:
        samples, rate = sf.read(source, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile.LibsndfileError, RuntimeError, TypeError on odd headers
        if is_pipe(spec):
            fallback = _parse_streamed_wav(data)
            if fallback is not None:
                return fallback
        elif os.path.isdir(spec):
            raise AudioError(f"{name}{spec} is a directory, not an audio file") from None
        elif not os.path.isfile(spec):
            raise AudioError(f"{name}no such audio file: {spec}") from None
        elif os.path.getsize(spec) == 0:
            raise AudioError(f"{name}empty audio file: {spec}") from None
        raise AudioError(f"{name}cannot decode audio {spec}: {e}") from None
    short = wav_truncation(source, len(samples), int(rate))
    if short is not None:
        raise AudioError(f"{name}truncated audio {spec}: {short}")
    return Recording(samples, int(rate))


_STREAMED_SIZE = 0x7FFF0000  # data sizes from here up (and 0) are a streamed wav's "unknown length"


def wav_truncation(source, frames: int, rate: int) -> str | None:
    """How a PCM/float wav holding ``frames`` sample frames at ``rate`` falls short of what its
    header declares (``"its wav header declares N samples, it holds M (x of y s)"``), when more
    than 10 ms are missing; None otherwise (complete, not a RIFF wav, a streamed wav's unknown
    size, an unreadable header). ``source``: a path or a BytesIO. libsndfile reads a truncated
    wav without an error, only the samples that are there (Kaldi's wav reader warns)."""
    try:
        if isinstance(source, io.BytesIO):
            source.seek(0)
            header = _wav_header(source)
        else:
            with open(source, "rb") as f:
                header = _wav_header(f)
    except OSError:
        return None
    if header is None:
        return None
    fmt, size, _ = header
    if fmt is None or len(fmt) < 16 or int.from_bytes(fmt[0:2], "little") not in (1, 3, 0xFFFE):
        return None
    block = int.from_bytes(fmt[12:14], "little")
    if not block or size == 0 or size >= _STREAMED_SIZE:
        return None
    declared = size // block
    if declared - frames <= rate // 100:
        return None
    return (f"its wav header declares {declared} samples, it holds {frames} "
            f"({frames / rate:.3f} of {declared / rate:.3f} s)")


def _wav_header(f) -> tuple[bytes | None, int, int] | None:
    """Walk a RIFF/WAVE stream's chunks up to its data chunk: ``(fmt chunk body or None, the
    data size its header declares, offset of the data)``; None when it is not a RIFF wav or
    ends before a data chunk."""
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    fmt = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            return None
        cid, size = chunk[:4], int.from_bytes(chunk[4:8], "little")
        if cid == b"data":
            return fmt, size, f.tell()
        if cid == b"fmt ":
            fmt = f.read(size + (size & 1))
        else:
            f.seek(size + (size & 1), 1)


def check_transcribable(name: str, num_samples: int, rate: int, fbank, nonfinite: int = 0) -> None:
    """The checks of every audio input of ``asr transcribe`` (offline and --stream alike):
    an AudioError naming it (``name``: the file) when it has no samples, NaN/inf samples, or
    fewer than one feature frame of ``fbank`` (the model's FbankComputer) once at its rate."""
    if num_samples == 0:
        raise AudioError(f"{name}: empty audio (0 samples)")
    if nonfinite:
        raise AudioError(f"{name}: the audio has {nonfinite} NaN/inf samples")
    if fbank.num_frames(int(num_samples * fbank.sample_rate / rate)) == 0:
        raise AudioError(f"{name}: too short for one frame ({num_samples} samples at {rate} Hz; one frame is "
                         f"{1000.0 * fbank.frame_length / fbank.sample_rate:g} ms)")


def is_digital_silence(name: str, samples: np.ndarray) -> bool:
    """True, with a warning naming ``name``, when no sample reaches one 16-bit step (``asr
    transcribe``, offline and --stream alike, prints no words for it)."""
    if len(samples) and float(np.abs(samples).max()) * 32768.0 >= 1.0:
        return False
    log.warning("%s: digital silence (no sample reaches one 16-bit step): no words", name)
    return True


def read_audio(
    path_or_pipe: str | os.PathLike,
    target_rate: int | None = 16000,
    channel: int = 0,
    *,
    utt: str | None = None,
    start: float | None = None,
    end: float | None = None,
    resample: bool = True,
    max_overshoot: float = MAX_OVERSHOOT,
) -> np.ndarray:
    """Samples (float32 in [-1, 1], 1-D) of one channel of a recording or a segment of it.

    ``target_rate``: the rate returned (None: the file's own); a different file rate is
    resampled with soxr, or, with ``resample=False``, is an AudioError. ``channel``: index
    into the channels, or -1 for the average of all channels. ``utt`` names the utterance in
    error messages. ``start``/``end``: segment times in seconds (see module doc)."""
    rec = load_recording(path_or_pipe, utt)
    return extract(rec, target_rate, channel, utt=utt, start=start, end=end, resample=resample,
                   max_overshoot=max_overshoot, source=str(path_or_pipe))


def extract(
    rec: Recording,
    target_rate: int | None = 16000,
    channel: int = 0,
    *,
    utt: str | None = None,
    start: float | None = None,
    end: float | None = None,
    resample: bool = True,
    max_overshoot: float = MAX_OVERSHOOT,
    source: str | None = None,
) -> np.ndarray:
    """Channel choice, segment cutting and resampling of an already decoded recording
    (lets a caller decode a recording once for its many segments). Errors name ``utt``, else
    ``source``."""
    name = _prefix(utt) or (f"{source}: " if source else "")
    samples, rate = rec.samples, rec.rate
    nchan = samples.shape[1]
    if channel == -1:
        x = samples.mean(axis=1, dtype=np.float32) if nchan > 1 else samples[:, 0]
    elif 0 <= channel < nchan:
        x = samples[:, channel]
    else:
        raise AudioError(f"{name}channel {channel} requested but the audio has {nchan} channel(s)")
    if start is not None or end is not None:
        x = _cut(x, rate, start or 0.0, end, name, max_overshoot)
    if target_rate is not None and rate != target_rate:
        if not resample:
            raise AudioError(f"{name}sample rate {rate} Hz, expected {target_rate} Hz (resampling disabled)")
        import soxr

        x = soxr.resample(x, rate, target_rate) if len(x) else x
    return np.ascontiguousarray(x, dtype=np.float32)


def _cut(x: np.ndarray, rate: int, start: float, end: float | None, name: str, max_overshoot: float) -> np.ndarray:
    length = len(x) / rate
    if start < 0:
        raise AudioError(f"{name}segment start {start} s is negative")
    if start >= length:
        raise AudioError(f"{name}segment starts at {start} s, after the end of the audio ({length:.3f} s)")
    if end is None or end == -1:
        end = length
    if end <= start:
        raise AudioError(f"{name}segment end {end} s is not after its start {start} s")
    if end > length:
        if end - length > max_overshoot:
            raise AudioError(
                f"{name}segment ends at {end} s, {end - length:.3f} s past the end of the audio "
                f"({length:.3f} s; tolerance {max_overshoot} s)"
            )
        end = length
    return x[int(start * rate) : min(int(end * rate), len(x))]


def _prefix(utt: str | None) -> str:
    return f"utterance {utt}: " if utt else ""


def _run_pipe(cmd: str, name: str) -> bytes:  # name: message prefix
    try:
        proc = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    except OSError as e:
        raise AudioError(f"{name}cannot run command {cmd!r}: {e}") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
        raise AudioError(f"{name}command failed with exit status {proc.returncode}: {cmd}" + (f": {tail}" if tail else ""))
    return proc.stdout


def _parse_streamed_wav(data: bytes) -> Recording | None:
    """PCM wav written to a pipe often has bogus RIFF/data sizes (0 or 0xFFFFFFFF); read the
    fmt chunk and take everything after the data header, as Kaldi's wav reader tolerates."""
    header = _wav_header(io.BytesIO(data)) if len(data) >= 44 else None
    if header is None or header[0] is None or len(header[0]) < 16:
        return None
    fmt, _, start = header
    tag, nchan, rate = int.from_bytes(fmt[0:2], "little"), int.from_bytes(fmt[2:4], "little"), int.from_bytes(fmt[4:8], "little")
    bits = int.from_bytes(fmt[14:16], "little")
    if tag not in (1, 0xFFFE) or bits != 16 or nchan < 1:
        return None
    pcm = data[start:]
    pcm = pcm[: len(pcm) - len(pcm) % (2 * nchan)]
    x = np.frombuffer(pcm, "<i2").reshape(-1, nchan).astype(np.float32) / 32768.0
    return Recording(x, rate)
