"""Fingerprints: what a product was built from, so "already done" and "do these match" are
decided by content, not by file names or times.

- ``file_hash(path)``: SHA-256 of a file's bytes (hex). Used for everything small or
  decisive: trees, transition models, symbol tables, priors, weights, LMs, graphs.
- ``audio_stamp(spec)``: a cheap stamp of an audio input: ``path size mtime`` (a changed or
  replaced wav changes it); a ``cmd |`` wav.scp entry is stamped by its command text.
- ``fingerprints(files)``: ``{name: file_hash}`` of a mapping ``name -> path``.
- ``first_difference(recorded, current)``: the first key whose value differs (None if equal).

Example::

    >>> inputs = fingerprints({"tree": "exp/tree/tree", "final.mdl": "exp/tree/final.mdl"})
    >>> first_difference(info["inputs"], inputs)   # None: nothing changed
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping

_CHUNK = 1 << 20


def file_hash(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of the bytes of ``path``."""
    with open(path, "rb") as f:
        return _stream_hash(f)


def _stream_hash(f) -> str:
    h = hashlib.sha256()
    while True:
        block = f.read(_CHUNK)
        if not block:
            break
        h.update(block)
    return h.hexdigest()


def arpa_text_hash(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of an ARPA LM's text, decompressed when the file is gzipped: the same LM
    as ``lm.arpa`` or ``lm.arpa.gz`` has one hash."""
    import gzip

    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
        return _stream_hash(f)


def text_hash(text: str) -> str:
    """SHA-256 (hex) of a string (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def audio_stamp(spec: str) -> str:
    """Stamp of one wav.scp value: ``path size mtime_ns`` for a file (missing: ``path missing``);
    for a ``cmd |`` pipe the command and the stamp of every file it names (each word that is an
    existing file, or a missing one with a ``/`` in it), so audio replaced or repaired behind
    an unchanged command is noticed."""
    spec = str(spec)
    if spec.rstrip().endswith("|"):
        import shlex

        try:
            words = shlex.split(spec.rstrip()[:-1])
        except ValueError:
            words = spec.split()
        named = [w for w in words if os.path.isfile(w) or ("/" in w and not os.path.exists(w))]
        return " ; ".join([spec, *(_file_stamp(w) for w in named)])
    return _file_stamp(spec)


def _file_stamp(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path} missing"
    return f"{path} {st.st_size} {st.st_mtime_ns}"


def fingerprints(files: Mapping[str, str | os.PathLike | None]) -> dict[str, str]:
    """``{name: file_hash(path)}`` for every entry whose path is not None."""
    return {name: file_hash(Path(p)) for name, p in files.items() if p is not None}


def dir_hash(path: str | os.PathLike) -> str:
    """SHA-256 over every file of a directory tree (relative paths and contents), e.g. a lang dir."""
    root = Path(path)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(f"{p.relative_to(root).as_posix()} {file_hash(p)}\n".encode("utf-8"))
    return h.hexdigest()


def path_hash(path: str | os.PathLike | None) -> str | None:
    """``file_hash`` of a file, ``dir_hash`` of a directory, "missing" when neither, None for None."""
    if path is None:
        return None
    p = Path(path)
    if p.is_file():
        return file_hash(p)
    if p.is_dir():
        return dir_hash(p)
    return "missing"


def feature_fingerprints(data_dir: str | os.PathLike) -> dict[str, object]:
    """What a data dir's features are: SHA-256 of feats.scp, cmvn.scp, global_cmvn.stats,
    utt2num_frames (those present) and the stamps of the arks feats.scp points into (make-fbank
    rewrites arks in place, so an unchanged feats.scp can point to new numbers)."""
    data_dir = Path(data_dir)
    out: dict[str, object] = {}
    for name in ("feats.scp", "cmvn.scp", "global_cmvn.stats", "utt2num_frames"):
        if (data_dir / name).is_file():
            out[name] = file_hash(data_dir / name)
    if (data_dir / "feats.scp").is_file():
        arks = set()
        with open(data_dir / "feats.scp", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split(maxsplit=1)
                if len(parts) == 2:
                    arks.add(parts[1].strip().rsplit(":", 1)[0])
        out["arks"] = sorted(audio_stamp(a) for a in arks)
    return out


FULL_CHECK_BYTES = 64 << 20  # files up to this size are re-hashed when a product is loaded


def unchanged(path: str | os.PathLike, sha256: str, size: int | None = None) -> bool:
    """Whether ``path`` still is the file recorded as ``sha256`` (and ``size``): re-hashed when
    at most FULL_CHECK_BYTES (or when no size was recorded), else compared by size, so loading
    a model dir with a multi-GB LM stays fast."""
    p = Path(path)
    actual = p.stat().st_size
    if size is not None and actual != size:
        return False
    if size is not None and actual > FULL_CHECK_BYTES:
        return True
    return file_hash(p) == sha256


def first_difference(recorded: Mapping, current: Mapping) -> str | None:
    """The first key (sorted) whose value differs between two fingerprint mappings, or None."""
    for key in sorted(set(recorded) | set(current)):
        if recorded.get(key) != current.get(key):
            return key
    return None
