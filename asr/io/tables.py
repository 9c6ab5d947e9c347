"""Kaldi text tables: one ``key value...`` entry per line (wav.scp, text, utt2spk, ...).

Readers keep line numbers so every error can name the file and line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from asr.errors import FormatError
from asr.io.atomic import atomic_write


@dataclass(frozen=True)
class TableEntry:
    key: str
    value: str  # the rest of the line after the key, stripped; "" when absent
    line: int  # 1-based line number in the file


def iter_table(path: str | os.PathLike, allow_empty_value: bool = True) -> Iterator[TableEntry]:
    """Yield the entries of a Kaldi text table. Blank lines raise FormatError."""
    path = Path(path)
    with open(path, "rb") as f:
        for lineno, raw_bytes in enumerate(f, 1):
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError as e:
                raise FormatError(f"{path}:{lineno}: not valid UTF-8 (byte {raw_bytes[e.start]:#04x} at column "
                                  f"{e.start + 1})") from None
            line = raw.strip()
            if not line:
                raise FormatError(f"{path}:{lineno}: empty line")
            parts = line.split(maxsplit=1)
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise FormatError(f"{path}:{lineno}: key {parts[0]!r} has no value")
            yield TableEntry(parts[0], value, lineno)


def read_table(path: str | os.PathLike, allow_empty_value: bool = True) -> dict[str, str]:
    """Read a table into a dict, raising FormatError on a duplicate key."""
    out: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for e in iter_table(path, allow_empty_value):
        if e.key in out:
            raise FormatError(f"{path}:{e.line}: duplicate key {e.key!r} (first on line {first_line[e.key]})")
        out[e.key] = e.value
        first_line[e.key] = e.line
    return out


def write_table(path: str | os.PathLike, items: Iterable[tuple[str, str]], sort: bool = True) -> None:
    """Write ``key value`` lines atomically, sorted by key (C locale order) unless told not to."""
    rows = list(items)
    if sort:
        rows.sort(key=lambda kv: kv[0].encode("utf-8"))
    with atomic_write(path) as f:
        for k, v in rows:
            f.write(f"{k} {v}\n" if v != "" else f"{k}\n")
