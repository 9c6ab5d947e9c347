"""Kaldi integer-vector archives (alignments, pdf ids, phone sequences).

Reads both Kaldi forms, optionally gzipped:
- text: ``utt 1 2 3`` one utterance per line (``ark,t:``);
- binary: ``utt \\0B`` then ``\\x04 <int32 n>`` then n times ``\\x04 <int32>`` (Kaldi's
  BasicVectorHolder<int32>), which is what ``ali.*.gz`` contain.
Writes the text form by default (what ``ali-to-pdf ... ark,t:`` writes).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from asr.errors import FormatError
from asr.io.atomic import atomic_write

_ELEM = np.dtype([("size", "i1"), ("value", "<i4")])


_BLOCK = 1 << 20


def _open(path: Path):
    with open(path, "rb") as f:
        head = f.read(2)
    return gzip.open(path, "rb") if head == b"\x1f\x8b" else open(path, "rb")


class _Stream:
    """A file read in blocks: the memory an ark needs is one block and one entry, never the
    whole file (alignment arks of large corpora are hundreds of MB)."""

    def __init__(self, f, path: Path):
        self.f, self.path = f, path
        self.buf = b""
        self.pos = 0
        self.newlines_dropped = 0  # newlines in the part of the file already dropped (line numbers)

    def more(self) -> bool:
        try:
            chunk = self.f.read(_BLOCK)
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise FormatError(f"{self.path}: truncated or corrupt gzip file ({e})") from None
        if not chunk:
            return False
        if self.pos:
            self.newlines_dropped += self.buf.count(b"\n", 0, self.pos)
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def find(self, sub: bytes) -> int:
        """Index in ``buf`` of ``sub`` at or after ``pos`` (reading more as needed), or -1."""
        start = self.pos
        while True:
            i = self.buf.find(sub, start)
            if i >= 0:
                return i
            start = max(self.pos, len(self.buf) - len(sub) + 1) - self.pos
            if not self.more():
                return -1
            start += self.pos

    def ensure(self, n: int) -> bool:
        while len(self.buf) - self.pos < n:
            if not self.more():
                return False
        return True

    def skip_space(self) -> bool:
        """Skip whitespace; False at the end of the file."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos:self.pos + 1].isspace():
                self.pos += 1
            if self.pos < len(self.buf):
                return True
            if not self.more():
                return False

    def line_number(self) -> int:
        return self.newlines_dropped + self.buf.count(b"\n", 0, self.pos) + 1


def iter_int_ark(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(key, int32 array)`` from a text or binary int-vector ark (gzip detected),
    reading the file in blocks."""
    path = Path(path)
    with _open(path) as f:
        s = _Stream(f, path)
        entry = 0
        while s.skip_space():
            entry += 1
            sp = s.find(b" ")
            nl = s.find(b"\n") if sp < 0 else s.buf.find(b"\n", s.pos, sp)
            if sp < 0 or nl >= 0:
                # a key with no values in text form
                end = nl if nl >= 0 else len(s.buf)
                yield s.buf[s.pos:end].decode("utf-8").strip(), np.zeros(0, dtype=np.int32)
                s.pos = end + 1
                continue
            key = s.buf[s.pos:sp].decode("utf-8")
            s.pos = sp + 1
            s.ensure(2)
            if s.buf[s.pos:s.pos + 2] == b"\x00B":
                s.pos += 2
                if not s.ensure(5) or s.buf[s.pos:s.pos + 1] != b"\x04":
                    raise FormatError(f"{path}: entry {entry} ({key}): not an int32 vector")
                count = int(np.frombuffer(s.buf, "<i4", 1, s.pos + 1)[0])
                s.pos += 5
                if count < 0 or not s.ensure(5 * count):
                    raise FormatError(f"{path}: entry {entry} ({key}): truncated binary vector")
                elems = np.frombuffer(s.buf, _ELEM, count, s.pos)
                if count and not np.all(elems["size"] == 4):
                    raise FormatError(f"{path}: entry {entry} ({key}): bad element size marker")
                yield key, elems["value"].astype(np.int32)
                s.pos += 5 * count
            else:
                end = s.find(b"\n")
                end = len(s.buf) if end < 0 else end
                text = s.buf[s.pos:end].decode("utf-8").split()
                try:
                    arr = np.array([int(t) for t in text], dtype=np.int32)
                except ValueError:
                    raise FormatError(f"{path}:{s.line_number()}: utterance {key}: non-integer value") from None
                yield key, arr
                s.pos = end + 1


def read_int_ark(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a whole int-vector ark into a dict; duplicate keys are an error."""
    out: dict[str, np.ndarray] = {}
    for key, arr in iter_int_ark(path):
        if key in out:
            raise FormatError(f"{path}: duplicate utterance {key!r}")
        out[key] = arr
    return out


def write_int_ark(path: str | os.PathLike, items: Iterable[tuple[str, np.ndarray]], binary: bool = False) -> None:
    """Write an int-vector ark atomically (text by default; ``binary`` for Kaldi binary;
    a path ending in ``.gz`` is gzipped)."""
    path = Path(path)
    with atomic_write(path, "wb") as raw:
        f = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if path.suffix == ".gz" else raw
        for key, arr in items:
            arr = np.asarray(arr, dtype=np.int32)
            if binary:
                rec = np.empty(len(arr), _ELEM)
                rec["size"] = 4
                rec["value"] = arr
                f.write(key.encode() + b" \x00B\x04" + np.int32(len(arr)).tobytes() + rec.tobytes())
            else:
                f.write((" ".join([key, *map(str, arr.tolist())]) + "\n").encode())
        if f is not raw:
            f.close()
