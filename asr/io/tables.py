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


def utf8_error(e: UnicodeDecodeError) -> str:
    """What is wrong with a line that is not UTF-8 (its bytes were ``e.object``), for a
    ``FILE:LINE: ...`` message."""
    return f"not valid UTF-8 (byte {e.object[e.start]:#04x} at column {e.start + 1})"


def iter_table(path: str | os.PathLike, allow_empty_value: bool = True, unique: bool = False) -> Iterator[TableEntry]:
    """Yield the entries of a Kaldi text table. Blank lines raise FormatError; with
    ``unique``, so does a key seen before."""
    path = Path(path)
    first_line: dict[str, int] = {}
    with open(path, "rb") as f:
        for lineno, raw_bytes in enumerate(f, 1):
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError as e:
                raise FormatError(f"{path}:{lineno}: {utf8_error(e)}") from None
            line = raw.strip()
            if not line:
                raise FormatError(f"{path}:{lineno}: empty line")
            parts = line.split(maxsplit=1)
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise FormatError(f"{path}:{lineno}: key {parts[0]!r} has no value")
            if unique:
                if parts[0] in first_line:
                    raise FormatError(f"{path}:{lineno}: duplicate key {parts[0]!r} (first on line "
                                      f"{first_line[parts[0]]})")
                first_line[parts[0]] = lineno
            yield TableEntry(parts[0], value, lineno)


def read_table(path: str | os.PathLike, allow_empty_value: bool = True) -> dict[str, str]:
    """Read a table into a dict, raising FormatError on a duplicate key."""
    return {e.key: e.value for e in iter_table(path, allow_empty_value, unique=True)}


def write_table(path: str | os.PathLike, items: Iterable[tuple[str, str]], sort: bool = True) -> None:
    """Write ``key value`` lines atomically, sorted by key (C locale order) unless told not to."""
    rows = list(items)
    if sort:
        rows.sort(key=lambda kv: kv[0].encode("utf-8"))
    with atomic_write(path) as f:
        for k, v in rows:
            f.write(f"{k} {v}\n" if v != "" else f"{k}\n")
