"""Kaldi's object serialisation (``base/io-funcs``): tokens, int32, float, integer and
float vectors, in binary and text form.

Binary: a token is ``<tok> `` (token plus one space); an int32 is ``\\x04`` + 4 bytes LE;
a float is ``\\x04`` + 4 bytes (``\\x08`` + 8 for double); an integer vector is
``\\x04`` + int32 count (no size byte) + raw int32s; a float vector is the token ``FV``
(or ``DV``), an int32 (with size byte) and raw values. Text: whitespace-separated,
vectors in ``[ ... ]``. A binary Kaldi file starts with ``\\0B``.

Used by the transition model (``final.mdl``) and the tree.
"""

from __future__ import annotations

import re
import struct

import numpy as np

from asr.errors import FormatError

_TOKEN_RE = re.compile(rb"\S+")


class KaldiReader:
    """Sequential reader over the bytes of one Kaldi object stream."""

    def __init__(self, data: bytes, binary: bool, name: str = "<stream>", pos: int = 0):
        self.data = data
        self.binary = binary
        self.name = name
        self.pos = pos

    @classmethod
    def open(cls, path) -> "KaldiReader":
        """Open a Kaldi object file, detecting the ``\\0B`` binary header."""
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x00B":
            return cls(data, True, str(path), 2)
        return cls(data, False, str(path), 0)

    # -- errors --------------------------------------------------------------
    def _fail(self, msg: str) -> FormatError:
        if self.binary:
            return FormatError(f"{self.name}: byte {self.pos}: {msg}")
        line = self.data.count(b"\n", 0, self.pos) + 1
        return FormatError(f"{self.name}:{line}: {msg}")

    def _need(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise self._fail("unexpected end of file (truncated)")

    # -- text helpers ---------------------------------------------------------
    def _text_token(self) -> bytes:
        m = _TOKEN_RE.search(self.data, self.pos)
        if m is None:
            raise self._fail("unexpected end of file")
        self.pos = m.end()
        return m.group()

    def _skip_ws(self) -> None:
        n = len(self.data)
        while self.pos < n and self.data[self.pos : self.pos + 1].isspace():
            self.pos += 1

    # -- public ---------------------------------------------------------------
    def peek_char(self) -> str:
        self._skip_ws() if not self.binary else None
        if self.pos >= len(self.data):
            raise self._fail("unexpected end of file")
        return chr(self.data[self.pos])

    def token(self) -> str:
        if self.binary:
            end = self.data.find(b" ", self.pos)
            if end < 0:
                raise self._fail("unexpected end of file reading a token")
            tok = self.data[self.pos : end]
            self.pos = end + 1
            return tok.decode("latin-1")
        return self._text_token().decode("latin-1")

    def expect(self, token: str) -> None:
        start = self.pos
        got = self.token()
        if got != token:
            self.pos = start
            raise self._fail(f"expected token {token!r}, got {got[:40]!r}")

    def int32(self) -> int:
        if self.binary:
            self._need(5)
            size = self.data[self.pos : self.pos + 1]
            if size != b"\x04":
                raise self._fail(f"expected int32 (size byte 4), got {size!r}")
            (v,) = struct.unpack_from("<i", self.data, self.pos + 1)
            self.pos += 5
            return v
        tok = self._text_token()
        try:
            return int(tok)
        except ValueError:
            raise self._fail(f"expected an integer, got {tok[:40]!r}") from None

    def uint32(self) -> int:
        if self.binary:
            self._need(5)
            size = self.data[self.pos : self.pos + 1]
            if size != b"\xfc":  # unsigned: -sizeof
                raise self._fail(f"expected uint32 (size byte -4), got {size!r}")
            (v,) = struct.unpack_from("<I", self.data, self.pos + 1)
            self.pos += 5
            return v
        return self.int32()

    def float(self) -> float:
        if self.binary:
            self._need(5)
            size = self.data[self.pos]
            if size == 8:
                self._need(9)
            if size == 4:
                (v,) = struct.unpack_from("<f", self.data, self.pos + 1)
            elif size == 8:
                (v,) = struct.unpack_from("<d", self.data, self.pos + 1)
            else:
                raise self._fail(f"expected float (size byte 4 or 8), got {size}")
            self.pos += 1 + size
            return float(v)
        tok = self._text_token()
        try:
            return float(tok)
        except ValueError:
            raise self._fail(f"expected a number, got {tok[:40]!r}") from None

    def int_vector(self) -> np.ndarray:
        if self.binary:
            self._need(5)
            if self.data[self.pos : self.pos + 1] != b"\x04":
                raise self._fail("expected int32 vector")
            (n,) = struct.unpack_from("<i", self.data, self.pos + 1)
            start = self.pos + 5
            if n < 0 or start + 4 * n > len(self.data):
                raise self._fail("bad or truncated integer vector")
            self.pos = start + 4 * n
            return np.frombuffer(self.data, "<i4", n, start).astype(np.int32)
        return self._text_vector(int, "an integer", np.int32)

    def float_vector(self) -> np.ndarray:
        if self.binary:
            tok = self.token()
            if tok not in ("FV", "DV"):
                raise self._fail(f"expected FV or DV, got {tok!r}")
            n = self.int32()
            dt = "<f4" if tok == "FV" else "<f8"
            size = 4 if tok == "FV" else 8
            if n < 0 or self.pos + size * n > len(self.data):
                raise self._fail("bad or truncated float vector")
            v = np.frombuffer(self.data, dt, n, self.pos).astype(np.float32)
            self.pos += size * n
            return v
        return self._text_vector(float, "a number", np.float32)

    def _text_vector(self, convert, what: str, dtype) -> np.ndarray:
        """A text-mode vector ``[ v v ... ]``."""
        self.expect("[")
        vals = []
        while True:
            tok = self._text_token()
            if tok == b"]":
                break
            try:
                vals.append(convert(tok))
            except ValueError:
                raise self._fail(f"expected {what} in vector, got {tok[:40]!r}") from None
        return np.array(vals, dtype=dtype)


class KaldiWriter:
    """Accumulates a Kaldi object stream; ``getvalue()`` returns the bytes."""

    def __init__(self, binary: bool):
        self.binary = binary
        self.parts: list[bytes] = []

    def raw(self, s: str | bytes) -> None:
        self.parts.append(s.encode("latin-1") if isinstance(s, str) else s)

    def newline(self) -> None:
        if not self.binary:
            self.parts.append(b"\n")

    def token(self, tok: str) -> None:
        self.parts.append(tok.encode("latin-1") + b" ")

    def int32(self, v: int) -> None:
        if self.binary:
            self.parts.append(b"\x04" + struct.pack("<i", int(v)))
        else:
            self.parts.append(f"{int(v)} ".encode())

    def uint32(self, v: int) -> None:
        if self.binary:
            self.parts.append(b"\xfc" + struct.pack("<I", int(v)))
        else:
            self.parts.append(f"{int(v)} ".encode())

    def float(self, v: float) -> None:
        if self.binary:
            self.parts.append(b"\x04" + struct.pack("<f", float(v)))
        else:
            self.parts.append(f"{_fmt_float(v)} ".encode())

    def int_vector(self, v) -> None:
        v = np.asarray(v, dtype="<i4")
        if self.binary:
            self.parts.append(b"\x04" + struct.pack("<i", len(v)) + v.tobytes())
        else:
            self.parts.append(("[ " + "".join(f"{x} " for x in v.tolist()) + "]\n").encode())

    def float_vector(self, v) -> None:
        v = np.asarray(v, dtype="<f4")
        if self.binary:
            self.token("FV")
            self.int32(len(v))
            self.parts.append(v.tobytes())
        else:
            self.parts.append((" [ " + "".join(f"{_fmt_float(x)} " for x in v.tolist()) + "]\n").encode())

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


def _fmt_float(v: float) -> str:
    """Shortest text that reads back as the same float32 (Kaldi reads any decimal form)."""
    s = str(np.float32(v))
    return s[:-2] if s.endswith(".0") else s
