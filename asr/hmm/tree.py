"""Context-dependency trees (Kaldi ``ContextDependency`` over an ``EventMap``; ``tree/``).

An event is a set of (key, value) pairs: keys ``0..N-1`` are the phones of the context
window (``P`` is the central one), key ``-1`` (``PDF_CLASS``) is the pdf class of the HMM
state. The map answers with a pdf id. Three node kinds, as in Kaldi:

- ``CE a``: constant answer ``a``;
- ``TE key n ( child_0 ... child_{n-1} )``: table on the value of ``key`` (``NULL`` = none);
- ``SE key [ v1 v2 ... ] { yes no }``: ``yes`` if the value of ``key`` is in the set.

Kaldi's text tree file: ``ContextDependency N P ToPdf <map> EndContextDependency``
(what ``copy-tree --binary=false`` prints); the binary form (what ``build-tree`` writes:
``\\0B``, tokens followed by a space, int32 as ``\\x04`` + 4 bytes little-endian, table
sizes as uint32 ``\\xfc`` + 4 bytes, yes-sets as ``\\x04`` + int32 count + raw int32s;
``base/io-funcs``, ``tree/event-map.cc``, ``tree/context-dep.cc``). Both are read and
written byte for byte as Kaldi does (verified on trees written by Kaldi's build-tree).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from asr.errors import ModelError
from asr.hmm.kaldi_objects import KaldiReader, KaldiWriter

PDF_CLASS = -1


def allow_deep_trees() -> None:
    """Readers/writers recurse once per tree level: make room for very unbalanced trees."""
    import sys

    if sys.getrecursionlimit() < 20000:
        sys.setrecursionlimit(20000)


@dataclass
class ConstantNode:
    answer: int


@dataclass
class TableNode:
    key: int
    table: list  # list[EventMap | None]


@dataclass
class SplitNode:
    key: int
    yes_set: frozenset
    yes: "EventMap"
    no: "EventMap"


EventMap = Union[ConstantNode, TableNode, SplitNode]


def map_event(node: EventMap | None, event: dict[int, int]) -> int | None:
    """Kaldi ``EventMap::Map``: the answer for a fully specified event, or None."""
    while node is not None:
        if isinstance(node, ConstantNode):
            return node.answer
        value = event.get(node.key)
        if value is None:
            return None
        if isinstance(node, TableNode):
            node = node.table[value] if 0 <= value < len(node.table) else None
        else:
            node = node.yes if value in node.yes_set else node.no
    return None


def multi_map(node: EventMap | None, event: dict[int, int], out: set[int]) -> None:
    """Kaldi ``EventMap::MultiMap``: every answer reachable when unspecified keys may be anything."""
    stack = [node]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if isinstance(node, ConstantNode):
            out.add(node.answer)
            continue
        value = event.get(node.key)
        if isinstance(node, TableNode):
            if value is None:
                stack.extend(node.table)
            elif 0 <= value < len(node.table):
                stack.append(node.table[value])
        else:
            if value is None:
                stack.extend((node.yes, node.no))
            else:
                stack.append(node.yes if value in node.yes_set else node.no)


def map_many(node: EventMap | None, columns: dict[int, np.ndarray], n: int) -> np.ndarray:
    """Vectorised ``map_event`` over ``n`` events given as one value array per key;
    -1 where there is no answer (missing key, NULL table entry)."""
    out = np.full(n, -1, dtype=np.int32)
    stack = [(node, np.arange(n))]
    while stack:
        node, idx = stack.pop()
        if node is None or len(idx) == 0:
            continue
        if isinstance(node, ConstantNode):
            out[idx] = node.answer
            continue
        col = columns.get(node.key)
        if col is None:
            continue
        v = col[idx]
        if isinstance(node, TableNode):
            ok = (v >= 0) & (v < len(node.table))
            idx, v = idx[ok], v[ok]
            order = np.argsort(v, kind="stable")
            idx, v = idx[order], v[order]
            bounds = np.nonzero(np.diff(v))[0] + 1
            for part in np.split(np.arange(len(v)), bounds):
                if len(part):
                    stack.append((node.table[int(v[part[0]])], idx[part]))
        else:
            yes = np.isin(v, np.fromiter(node.yes_set, dtype=np.int64, count=len(node.yes_set)))
            stack.append((node.yes, idx[yes]))
            stack.append((node.no, idx[~yes]))
    return out


def max_answer(node: EventMap | None) -> int:
    out: set[int] = set()
    multi_map(node, {}, out)
    return max(out) if out else -1


class ContextDependency:
    """Kaldi's ``ContextDependency``: context width ``N``, central position ``P``, pdf map."""

    def __init__(self, context_width: int, central_position: int, to_pdf: EventMap):
        if not (context_width >= 1 and 0 <= central_position < context_width):
            raise ModelError(f"tree: invalid context width {context_width} / central position {central_position}")
        self.context_width = context_width
        self.central_position = central_position
        self.to_pdf = to_pdf
        self.num_pdfs = max_answer(to_pdf) + 1

    def compute(self, phone_window: tuple[int, ...], pdf_class: int) -> int | None:
        """The pdf of pdf class ``pdf_class`` of the central phone in ``phone_window``
        (length N; 0 = no phone, at utterance edges), or None if the tree has none."""
        if len(phone_window) != self.context_width:
            raise ModelError(f"tree: phone window of length {len(phone_window)}, expected {self.context_width}")
        event = {i: int(p) for i, p in enumerate(phone_window)}
        event[PDF_CLASS] = int(pdf_class)
        return map_event(self.to_pdf, event)

    def compute_many(self, windows: np.ndarray, pdf_classes: np.ndarray) -> np.ndarray:
        """Vectorised ``compute`` over rows: ``windows`` int [M, N], ``pdf_classes`` int [M].
        -1 where the tree has no answer."""
        windows = np.asarray(windows, dtype=np.int64).reshape(-1, self.context_width)
        keys = np.concatenate([windows, np.asarray(pdf_classes, dtype=np.int64).reshape(-1, 1)], axis=1)
        if len(keys) == 0:
            return np.zeros(0, dtype=np.int32)
        if len(keys) > 5000:  # many rows: partition them down the tree
            cols = {k: windows[:, k] for k in range(self.context_width)}
            cols[PDF_CLASS] = keys[:, -1]
            return map_many(self.to_pdf, cols, len(keys))
        cache = self.__dict__.setdefault("_cache", {})  # few rows: walk per row, memoised
        out = np.empty(len(keys), dtype=np.int32)
        for i, row in enumerate(map(tuple, keys.tolist())):
            a = cache.get(row)
            if a is None:
                a = self.compute(row[:-1], row[-1])
                a = cache[row] = -1 if a is None else a
            out[i] = a
        return out

    def get_pdf_info(self, phones: list[int], num_pdf_classes: dict[int, int]) -> list[list[tuple[int, int]]]:
        """Kaldi ``GetPdfInfo``: for each pdf, the sorted (phone, pdf_class) pairs it can be."""
        info: list[set] = [set() for _ in range(self.num_pdfs)]
        for phone in phones:
            for pc in range(num_pdf_classes[phone]):
                pdfs: set[int] = set()
                multi_map(self.to_pdf, {self.central_position: phone, PDF_CLASS: pc}, pdfs)
                for pdf in pdfs:
                    info[pdf].add((phone, pc))
        return [sorted(s) for s in info]

    # -- I/O -----------------------------------------------------------------
    @classmethod
    def read(cls, path: str | os.PathLike) -> "ContextDependency":
        """Read a Kaldi tree file (text, or binary with the ``\\0B`` header)."""
        try:
            r = KaldiReader.open(path)
        except OSError as e:
            raise ModelError(f"cannot read tree {path}: {e}") from None
        return cls.read_from(r)

    @classmethod
    def read_from(cls, r: KaldiReader) -> "ContextDependency":
        allow_deep_trees()
        r.expect("ContextDependency")
        n = r.int32()
        p = r.int32()
        tok = r.token()
        if tok == "ToLength":  # back-compat, as Kaldi
            _read_map(r)
            tok = r.token()
        if tok != "ToPdf":
            raise r._fail(f"expected ToPdf, got {tok!r}")
        to_pdf = _read_map(r)
        r.expect("EndContextDependency")
        if to_pdf is None:
            raise r._fail("tree has a NULL pdf map")
        return cls(n, p, to_pdf)

    def write_to(self, w: KaldiWriter) -> None:
        allow_deep_trees()
        w.token("ContextDependency")
        w.int32(self.context_width)
        w.int32(self.central_position)
        w.token("ToPdf")
        _write_map(w, self.to_pdf)
        w.token("EndContextDependency")

    def write(self, path: str | os.PathLike, binary: bool = False) -> None:
        """Write the tree in Kaldi's format, byte for byte as Kaldi writes it: text by default
        (as ``copy-tree --binary=false``), binary (``\\0B`` header, as ``build-tree``) with
        ``binary=True``."""
        from asr.io.atomic import atomic_write_bytes

        atomic_write_bytes(Path(path), self.to_bytes(binary))

    def to_bytes(self, binary: bool) -> bytes:
        """The file contents Kaldi's ``WriteKaldiObject`` would produce."""
        w = KaldiWriter(binary)
        if binary:
            w.raw(b"\x00B")
        self.write_to(w)
        return w.getvalue()

    def to_text(self) -> str:
        w = KaldiWriter(False)
        self.write_to(w)
        return w.getvalue().decode("latin-1")


def _read_map(r: KaldiReader) -> EventMap | None:
    # Iterative would be safer for very deep trees; Kaldi trees are at most a few hundred deep.
    c = r.peek_char()
    if c == "N":
        r.expect("NULL")
        return None
    if c == "C":
        r.expect("CE")
        return ConstantNode(r.int32())
    if c == "T":
        r.expect("TE")
        key = r.int32()
        size = r.uint32()
        r.expect("(")
        table = [_read_map(r) for _ in range(size)]
        r.expect(")")
        return TableNode(key, table)
    if c == "S":
        r.expect("SE")
        key = r.int32()
        yes_set = frozenset(r.int_vector().tolist())
        r.expect("{")
        yes = _read_map(r)
        no = _read_map(r)
        r.expect("}")
        if yes is None or no is None:
            raise r._fail("SE node with a NULL branch")
        return SplitNode(key, yes_set, yes, no)
    raise r._fail(f"unexpected character {c!r} in an event map")


def _write_map(w: KaldiWriter, node: EventMap | None) -> None:
    if node is None:
        w.token("NULL")
    elif isinstance(node, ConstantNode):
        w.token("CE")
        w.int32(node.answer)
    elif isinstance(node, TableNode):
        w.token("TE")
        w.int32(node.key)
        w.uint32(len(node.table))
        w.token("(")
        for child in node.table:
            _write_map(w, child)
        w.token(")")
        w.newline()
    else:
        w.token("SE")
        w.int32(node.key)
        vals = sorted(node.yes_set)
        if w.binary:
            w.int_vector(vals)
        else:
            w.raw("[ " + "".join(f"{v} " for v in vals) + "]\n")
        w.token("{")
        _write_map(w, node.yes)
        _write_map(w, node.no)
        w.token("}")
        w.newline()


def stub_map(central_position: int, phone_sets: list[list[int]], num_pdf_classes: dict[int, int],
             share_roots: list[bool], counter: list[int]) -> EventMap:
    """Kaldi ``GetStubMap``: one leaf per (phone set, pdf class) — or per phone set when its
    root is shared — numbered in order; ``counter[0]`` is the next leaf number."""
    max_set = max(len(s) for s in phone_sets)
    highest = max(max(s) for s in phone_sets)
    if len(phone_sets) == 1:
        if share_roots[0]:
            counter[0] += 1
            return ConstantNode(counter[0] - 1)
        length = max(num_pdf_classes[p] for p in phone_sets[0])
        table = []
        for _ in range(length):
            table.append(ConstantNode(counter[0]))
            counter[0] += 1
        return TableNode(PDF_CLASS, table)
    if max_set == 1 and len(phone_sets) <= 2 * highest:
        table: list = [None] * (highest + 1)
        for s, share in zip(phone_sets, share_roots):
            table[s[0]] = stub_map(central_position, [s], num_pdf_classes, [share], counter)
        return TableNode(central_position, table)
    half = len(phone_sets) // 2
    first = stub_map(central_position, phone_sets[:half], num_pdf_classes, share_roots[:half], counter)
    second = stub_map(central_position, phone_sets[half:], num_pdf_classes, share_roots[half:], counter)
    yes_set = frozenset(p for s in phone_sets[:half] for p in s)
    return SplitNode(central_position, yes_set, first, second)


def monophone_tree(phone_sets: list[list[int]], num_pdf_classes: dict[int, int]) -> ContextDependency:
    """Kaldi ``MonophoneContextDependencyShared`` (``gmm-init-mono --shared-phones=sets.int``):
    N=1, P=0; the phones of one set share their pdfs, one pdf per pdf class."""
    sets = [sorted(set(s)) for s in phone_sets if s]
    if not sets:
        raise ModelError("monophone tree: no phones")
    to_pdf = stub_map(0, sets, num_pdf_classes, [False] * len(sets), [0])
    return ContextDependency(1, 0, to_pdf)
