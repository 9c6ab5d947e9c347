"""Word lattices: Kaldi text lattice archives (gzipped) and a numpy container.

File format (docs/contracts.md): a Kaldi *text* archive of word-acceptor lattices, one
block per utterance::

    utt-id
    src dst word word graph_cost,acoustic_cost
    final_state graph_cost,acoustic_cost
    <blank line>

An arc with weight ``0,0`` may omit the weight, a final state with weight ``0,0`` may be
written as just ``state``; the start state is the state on the first line (Kaldi's rule).
Costs are Kaldi's: ``graph`` = -(LM + transition + pronunciation log-probs), ``acoustic``
= -(log p(s|x) - log p(s)), unscaled. Files ending in ``.gz`` are gzipped. The reader
also accepts Kaldi text *compact* lattices (``src dst word g,a,tids``; the transition-id
string is dropped) and non-acceptor lattices (the output label is taken as the word).

Best path at LM weight ``lmwt`` and word insertion penalty ``wip`` follows Kaldi's
``lattice-scale --inv-acoustic-scale=LMWT | lattice-add-penalty --word-ins-penalty=WIP |
lattice-best-path``: it minimises ``graph + wip * num_words + acoustic / lmwt``.
"""

from __future__ import annotations

import gzip
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator, NamedTuple

import numpy as np

from asr.errors import DecodeError, FormatError
from asr.io.atomic import atomic_write

log = logging.getLogger(__name__)

INF = np.float32(np.inf)


@dataclass
class Lattice:
    """A word-acceptor lattice as parallel numpy arrays.

    Arcs: ``src, dst, word`` (int32) and ``graph, acoustic`` (float32 costs). States:
    ``final_graph, final_acoustic`` (float32, ``inf`` = not final), ``start`` (int; -1 for
    an empty lattice with no states).
    """

    src: np.ndarray
    dst: np.ndarray
    word: np.ndarray
    graph: np.ndarray
    acoustic: np.ndarray
    final_graph: np.ndarray
    final_acoustic: np.ndarray
    start: int = 0

    def __post_init__(self) -> None:
        self.src = np.asarray(self.src, dtype=np.int32).reshape(-1)
        self.dst = np.asarray(self.dst, dtype=np.int32).reshape(-1)
        self.word = np.asarray(self.word, dtype=np.int32).reshape(-1)
        self.graph = np.asarray(self.graph, dtype=np.float32).reshape(-1)
        self.acoustic = np.asarray(self.acoustic, dtype=np.float32).reshape(-1)
        self.final_graph = np.asarray(self.final_graph, dtype=np.float32).reshape(-1)
        self.final_acoustic = np.asarray(self.final_acoustic, dtype=np.float32).reshape(-1)
        self.start = int(self.start)
        n = len(self.src)
        if not (len(self.dst) == len(self.word) == len(self.graph) == len(self.acoustic) == n):
            raise DecodeError("Lattice: arc arrays differ in length")
        if len(self.final_graph) != len(self.final_acoustic):
            raise DecodeError("Lattice: final weight arrays differ in length")
        ns = self.num_states
        if n and (min(self.src.min(), self.dst.min()) < 0 or max(self.src.max(), self.dst.max()) >= ns):
            raise DecodeError(f"Lattice: arc state id outside 0..{ns - 1}")
        if ns and not 0 <= self.start < ns:
            raise DecodeError(f"Lattice: start state {self.start} outside 0..{ns - 1}")

    @property
    def num_states(self) -> int:
        return len(self.final_graph)

    @property
    def num_arcs(self) -> int:
        return len(self.src)

    @classmethod
    def empty(cls) -> "Lattice":
        z = np.zeros(0)
        return cls(z, z, z, z, z, z, z, start=-1)

    @classmethod
    def linear(cls, words: Iterable[int], graph: Iterable[float] | None = None,
               acoustic: Iterable[float] | None = None) -> "Lattice":
        """A single-path lattice over ``words`` (handy for tests and 1-best output)."""
        w = np.asarray(list(words), dtype=np.int32)
        n = len(w)
        g = np.zeros(n) if graph is None else np.asarray(list(graph), dtype=np.float32)
        a = np.zeros(n) if acoustic is None else np.asarray(list(acoustic), dtype=np.float32)
        fg = np.full(n + 1, np.inf, dtype=np.float32)
        fa = fg.copy()
        fg[n] = fa[n] = 0.0
        return cls(np.arange(n), np.arange(1, n + 1), w, g, a, fg, fa, start=0)

    def is_final(self) -> np.ndarray:
        return np.isfinite(self.final_graph) & np.isfinite(self.final_acoustic)


# ----------------------------------------------------------------------------- reading


def read_lattices(path: str | os.PathLike) -> Iterator[tuple[str, Lattice]]:
    """Yield ``(utt, Lattice)`` from a text lattice archive (gzipped when it ends in .gz)."""
    path = Path(path)
    if not path.is_file():
        raise DecodeError(f"{path}: no such lattice file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            yield from _read_stream(f, str(path))
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: cannot read lattice archive: {e}") from e


def _read_stream(f: IO[str], name: str) -> Iterator[tuple[str, Lattice]]:
    lineno = 0
    key: str | None = None
    key_line = 0
    lines: list[str] = []
    for raw in f:
        lineno += 1
        line = raw.strip()
        if key is None:
            if not line:
                continue  # tolerate blank lines between entries
            parts = line.split()
            if len(parts) != 1:
                raise FormatError(f"{name}:{lineno}: expected an utterance id alone on its line, got {line!r}")
            key, key_line, lines = parts[0], lineno, []
        elif line:
            lines.append(line)
        else:
            yield key, _parse_block(lines, name, key_line, key)
            key = None
    if key is not None:  # last block without the terminating blank line
        yield key, _parse_block(lines, name, key_line, key)


def _parse_weight(tok: str, name: str, lineno: int) -> tuple[float, float]:
    parts = tok.split(",")
    if len(parts) < 2:
        raise FormatError(f"{name}:{lineno}: bad lattice weight {tok!r} (want graph,acoustic)")
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise FormatError(f"{name}:{lineno}: bad lattice weight {tok!r}") from None


def _parse_block(lines: list[str], name: str, key_line: int, key: str) -> Lattice:
    if not lines:
        return Lattice.empty()
    n = len(lines)
    src = np.empty(n, np.int64)
    dst = np.empty(n, np.int64)
    word = np.empty(n, np.int64)
    g = np.zeros(n, np.float64)
    a = np.zeros(n, np.float64)
    fin_state: list[int] = []
    fin_w: list[tuple[float, float]] = []
    na = 0
    start = None
    for i, line in enumerate(lines):
        lineno = key_line + 1 + i
        col = line.split()
        has_w = "," in col[-1]
        nc = len(col) - (1 if has_w else 0)
        try:
            if nc == 1:  # final state
                s = int(col[0])
                fin_state.append(s)
                fin_w.append(_parse_weight(col[1], name, lineno) if has_w else (0.0, 0.0))
            elif nc in (3, 4):  # compact arc (src dst word) or arc (src dst ilabel olabel)
                s = int(col[0])
                src[na] = s
                dst[na] = int(col[1])
                word[na] = int(col[nc - 1])
                if nc == 4:
                    int(col[2])  # input label (= word in a word acceptor); validated, not kept
                if has_w:
                    g[na], a[na] = _parse_weight(col[-1], name, lineno)
                na += 1
            else:
                raise ValueError
        except ValueError:
            raise FormatError(f"{name}:{lineno}: bad lattice line for utterance {key!r}: {line!r}") from None
        if start is None:
            start = s
    num_states = 1 + max(
        int(src[:na].max()) if na else -1,
        int(dst[:na].max()) if na else -1,
        max(fin_state) if fin_state else -1,
    )
    fg = np.full(num_states, np.inf, np.float32)
    fa = np.full(num_states, np.inf, np.float32)
    if fin_state:
        fs = np.asarray(fin_state)
        fw = np.asarray(fin_w, dtype=np.float32)
        fg[fs] = fw[:, 0]
        fa[fs] = fw[:, 1]
    if (na and min(src[:na].min(), dst[:na].min()) < 0) or (fin_state and min(fin_state) < 0):
        raise FormatError(f"{name}:{key_line}: negative state id in lattice of utterance {key!r}")
    return Lattice(src[:na], dst[:na], word[:na], g[:na], a[:na], fg, fa, start=start)


# ----------------------------------------------------------------------------- writing


def write_lattices(path: str | os.PathLike, items: Iterable[tuple[str, Lattice]]) -> int:
    """Write ``(utt, Lattice)`` pairs as a text lattice archive (gzipped if ``.gz``),
    atomically. Returns the number of lattices written."""
    path = Path(path)
    count = 0
    with atomic_write(path, "wb") as raw:
        gz = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) if path.suffix == ".gz" else None
        out: IO[bytes] = gz if gz is not None else raw
        for utt, lat in items:
            if not utt or any(c.isspace() for c in utt):
                raise DecodeError(f"{path}: bad utterance id {utt!r}")
            out.write(format_lattice(utt, lat).encode("utf-8"))
            count += 1
        if gz is not None:
            gz.close()
    return count


def _weights(g: np.ndarray, a: np.ndarray) -> list[str]:
    """``graph,acoustic`` texts with 7 significant digits (Kaldi itself writes 6)."""
    out = [f"{x:.7g},{y:.7g}" for x, y in zip(g.tolist(), a.tolist())]
    if not (np.isfinite(g).all() and np.isfinite(a).all()):
        out = [w.replace("inf", "Infinity") for w in out]
    return out


def format_lattice(utt: str, lat: Lattice) -> str:
    """The text block of one lattice, ending with the blank line. The start state's
    line comes first (Kaldi takes the start state from the first line)."""
    if lat.num_states == 0:
        return utt + "\n\n"
    order = np.argsort(lat.src != lat.start, kind="stable")
    fin = np.flatnonzero(lat.is_final())
    arc_lines = [
        f"{s} {d} {w} {w} {ww}"
        for s, d, w, ww in zip(lat.src[order].tolist(), lat.dst[order].tolist(), lat.word[order].tolist(),
                               _weights(lat.graph[order], lat.acoustic[order]))
    ]
    fin_lines = [f"{s} {ww}" for s, ww in zip(fin.tolist(), _weights(lat.final_graph[fin], lat.final_acoustic[fin]))]
    if len(order) and lat.src[order[0]] == lat.start:
        lines = arc_lines + fin_lines
    else:  # the start state has no arcs: its final line must come first
        if not lat.is_final()[lat.start]:
            return utt + "\n\n"  # no path at all: written as the empty lattice
        i = int(np.flatnonzero(fin == lat.start)[0])
        lines = [fin_lines[i]] + arc_lines + fin_lines[:i] + fin_lines[i + 1:]
    return utt + "\n" + "\n".join(lines) + "\n\n"


# ----------------------------------------------------------------------------- best path


class BestPath(NamedTuple):
    words: np.ndarray  # int32 word ids along the path, epsilons (0) removed
    graph: float  # sum of graph costs on the path (incl. the final weight), no penalty
    acoustic: float  # sum of acoustic costs on the path (incl. the final weight), unscaled
    arcs: np.ndarray  # arc indices of the path, in order


def topological_levels(lat: Lattice) -> np.ndarray:
    """Level of every state: the length of the longest arc path from a state without
    incoming arcs (Kahn's algorithm, vectorised one level at a time). Raises DecodeError
    on a cycle."""
    ns = lat.num_states
    level = np.full(ns, -1, np.int64)
    if ns == 0:
        return level
    order = np.argsort(lat.src, kind="stable")
    indptr = np.zeros(ns + 1, np.int64)
    np.cumsum(np.bincount(lat.src, minlength=ns), out=indptr[1:])
    sorted_dst = lat.dst[order]
    indeg = np.bincount(lat.dst, minlength=ns).astype(np.int64)
    frontier = np.flatnonzero(indeg == 0)
    k = 0
    done = 0
    while len(frontier):
        level[frontier] = k
        done += len(frontier)
        starts = indptr[frontier]
        counts = indptr[frontier + 1] - starts
        total = int(counts.sum())
        if total == 0:
            break
        # indices of all arcs leaving the frontier: concatenated ranges
        offs = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total)
        u, c = np.unique(sorted_dst[offs], return_counts=True)
        indeg[u] -= c
        frontier = u[indeg[u] == 0]
        k += 1
    if done != ns:
        raise DecodeError("lattice has a cycle (not a DAG)")
    return level


def shortest_distance(lat: Lattice, arc_cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward shortest distance from the start state.

    ``arc_cost``: float [num_arcs] or [num_arcs, K] (K cost functions at once, e.g. an LM
    weight sweep). Returns ``(dist, back)`` of shape [num_states] or [num_states, K]:
    distances (inf = unreachable) and the best incoming arc (-1 for the start and
    unreachable states; ties go to the lowest arc index). Arcs are relaxed one topological
    level of their destination at a time; within a level the minimum per destination is a
    ``np.minimum.reduceat`` over arcs sorted by destination, so the Python loop runs over
    levels only.
    """
    cost = np.asarray(arc_cost, dtype=np.float64)
    one_d = cost.ndim == 1
    K = 1 if one_d else cost.shape[1]
    cost = cost.reshape(lat.num_arcs, K)  # (a lattice may have no arcs: one state, start and final)
    ns = lat.num_states
    dist = np.full((ns, K), np.inf)
    back = np.full((ns, K), -1, np.int64)
    if ns:
        dist[lat.start] = 0.0
    if lat.num_arcs:
        level = topological_levels(lat)
        # arcs sorted by (level of destination, destination, arc index)
        order = np.lexsort((np.arange(lat.num_arcs), lat.dst, level[lat.dst]))
        lev_sorted = level[lat.dst[order]]
        bounds = np.searchsorted(lev_sorted, np.arange(1, int(level.max()) + 2))
        for k in range(1, len(bounds)):
            arcs = order[bounds[k - 1]:bounds[k]]
            if len(arcs) == 0:
                continue
            d = lat.dst[arcs]
            seg = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])  # first arc of each destination
            cand = dist[lat.src[arcs]] + cost[arcs]  # [n, K]
            best = np.minimum.reduceat(cand, seg, axis=0)  # [num_dst, K]
            owner = np.repeat(np.arange(len(seg)), np.diff(np.r_[seg, len(arcs)]))
            is_best = (cand == best[owner]) & np.isfinite(cand)
            pos = np.where(is_best, np.arange(len(arcs))[:, None], len(arcs))
            first = np.minimum.reduceat(pos, seg, axis=0)  # [num_dst, K]
            dst_states = d[seg]
            ok = first < len(arcs)
            dist[dst_states] = np.where(ok, best, np.inf)
            back[dst_states] = np.where(ok, arcs[np.minimum(first, len(arcs) - 1)], -1)
    if one_d:
        return dist[:, 0], back[:, 0]
    return dist, back


def best_path(lat: Lattice, lmwt: float = 1.0, wip: float = 0.0) -> BestPath | None:
    """The path minimising ``graph + wip * num_words + acoustic / lmwt`` (Kaldi
    ``lattice-scale --inv-acoustic-scale=LMWT | lattice-add-penalty | lattice-best-path``).
    Returns None when no final state is reachable (Kaldi warns and skips the utterance)."""
    return best_paths(lat, [(lmwt, wip)])[0]


def best_paths(lat: Lattice, weights: Iterable[tuple[float, float]]) -> list[BestPath | None]:
    """``best_path`` for many ``(lmwt, wip)`` pairs in one vectorised pass."""
    weights = [(float(a), float(b)) for a, b in weights]
    if any(lmwt <= 0 for lmwt, _ in weights):
        raise DecodeError(f"LM weights must be positive, got {[w for w, _ in weights]}")
    if lat.num_states == 0 or not weights:
        return [None] * len(weights)
    inv = np.array([1.0 / a for a, _ in weights])
    wips = np.array([b for _, b in weights])
    g = lat.graph.astype(np.float64)[:, None]
    a = lat.acoustic.astype(np.float64)[:, None]
    cost = g + (lat.word != 0)[:, None] * wips[None, :] + a * inv[None, :]
    dist, back = shortest_distance(lat, cost)
    fg = lat.final_graph.astype(np.float64)
    fa = lat.final_acoustic.astype(np.float64)
    total = dist + fg[:, None] + fa[:, None] * inv[None, :]
    out: list[BestPath | None] = []
    for k in range(len(weights)):
        s = int(np.argmin(total[:, k]))
        if not np.isfinite(total[s, k]):
            out.append(None)
            continue
        final = s
        path = []
        while back[s, k] >= 0:
            path.append(back[s, k])
            s = int(lat.src[back[s, k]])
        arcs = np.asarray(path[::-1], dtype=np.int64)
        words = lat.word[arcs]
        out.append(BestPath(
            words=words[words != 0].astype(np.int32),
            graph=float(lat.graph[arcs].astype(np.float64).sum() + fg[final]),
            acoustic=float(lat.acoustic[arcs].astype(np.float64).sum() + fa[final]),
            arcs=arcs,
        ))
    return out
