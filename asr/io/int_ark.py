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
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from asr.errors import FormatError
from asr.io.atomic import atomic_write

_ELEM = np.dtype([("size", "i1"), ("value", "<i4")])


def _open_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        return f.read()


def iter_int_ark(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(key, int32 array)`` from a text or binary int-vector ark (gzip detected)."""
    path = Path(path)
    data = _open_bytes(path)
    pos, n, entry = 0, len(data), 0
    while pos < n:
        while pos < n and data[pos : pos + 1].isspace():
            pos += 1
        if pos >= n:
            break
        entry += 1
        sp = data.find(b" ", pos)
        nl = data.find(b"\n", pos)
        if sp < 0 or (0 <= nl < sp):
            # a key with no values in text form
            end = nl if nl >= 0 else n
            yield data[pos:end].decode("utf-8").strip(), np.zeros(0, dtype=np.int32)
            pos = end + 1
            continue
        key = data[pos:sp].decode("utf-8")
        pos = sp + 1
        if data[pos : pos + 2] == b"\x00B":
            pos += 2
            if data[pos : pos + 1] != b"\x04":
                raise FormatError(f"{path}: entry {entry} ({key}): not an int32 vector")
            count = int(np.frombuffer(data, "<i4", 1, pos + 1)[0])
            pos += 5
            end = pos + 5 * count
            if end > n:
                raise FormatError(f"{path}: entry {entry} ({key}): truncated binary vector")
            elems = np.frombuffer(data, _ELEM, count, pos)
            if count and not np.all(elems["size"] == 4):
                raise FormatError(f"{path}: entry {entry} ({key}): bad element size marker")
            yield key, elems["value"].astype(np.int32)
            pos = end
        else:
            end = data.find(b"\n", pos)
            end = n if end < 0 else end
            text = data[pos:end].decode("utf-8").split()
            try:
                arr = np.array([int(t) for t in text], dtype=np.int32)
            except ValueError:
                lineno = data.count(b"\n", 0, pos) + 1
                raise FormatError(f"{path}:{lineno}: utterance {key}: non-integer value") from None
            yield key, arr
            pos = end + 1


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
