"""Raw decoder lattices -> pruned, determinized word lattices with graph/acoustic costs apart.

``LatticeSimpleDecoder.get_raw_lattice()`` gives a state-level lattice (input labels =
transition-ids, output labels = words, weights = (graph cost, scaled acoustic cost)).
kaldifst has no lattice determinization, so this module does Kaldi's job
(``DeterminizeLatticePruned`` semantics, without the phone-level insertion):

1. the raw lattice is moved to numpy through its OpenFst binary form (one Python step per
   state to find the arc blocks, arcs parsed in bulk);
2. pruning (vectorised): forward and backward best total costs per state, arcs off every
   path within ``lattice_beam`` of the best are dropped;
3. determinization over words in Kaldi's lattice semiring: a weight is the pair
   (graph, acoustic); ``plus`` keeps the pair with the smaller sum (ties: smaller graph
   cost), ``times`` adds pairwise. Epsilon (non-word) arcs are removed inside the subset
   construction (epsilon closure in topological order). The result is exact: every word
   sequence of the pruned lattice appears once, with the (graph, acoustic) split of its
   best path (subsets are identified with residual costs rounded to 1e-3, as Kaldi's
   determinization compares weights with a delta, so costs agree with the raw lattice
   to about 1e-3). The subset loop is Python, but it runs over word-level subsets of a lattice
   already pruned and reduced to branching states, so it is small next to the search.
   Its effort is capped (``MAX_WORK`` arc visits, like Kaldi's max-mem/max-arcs): past the
   cap it is retried on a more tightly pruned lattice and finally replaced by the 1-best
   path (``word_lattice`` says so; callers warn and count it).
4. acoustic costs are divided by the acoustic scale (the contract's unscaled costs).

The first-order chains of epsilon arcs (one per frame inside a word) are collapsed
vectorised before step 3, so the Python loop sees roughly one state per word hypothesis.
"""

from __future__ import annotations

import heapq
import logging
import os
import tempfile

import numpy as np

from asr.lattice.lattice_io import Lattice, shortest_distance
from asr.errors import DecodeError

log = logging.getLogger(__name__)

_ARC_DT = np.dtype([("ilabel", "<i4"), ("olabel", "<i4"), ("g", "<f4"), ("a", "<f4"), ("nextstate", "<i4")])


class RawLattice:
    """A state-level lattice: arcs ``src, dst, ilabel (tid), word, g, a`` and finals."""

    def __init__(self, start, src, dst, ilabel, word, g, a, final_g, final_a):
        self.start = int(start)
        self.src, self.dst, self.ilabel, self.word = src, dst, ilabel, word
        self.g, self.a = g, a
        self.final_g, self.final_a = final_g, final_a

    @property
    def num_states(self) -> int:
        return len(self.final_g)

    def as_lattice(self) -> Lattice:
        return Lattice(self.src, self.dst, self.word, self.g, self.a, self.final_g, self.final_a, max(self.start, 0))


def raw_lattice_from_kaldifst(lat) -> RawLattice:
    """Parse a ``kaldifst.Lattice`` (vector FST of lattice4 arcs) into arrays."""
    fd, tmp = tempfile.mkstemp(suffix=".lat", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    os.close(fd)
    try:
        if not lat.write(tmp):
            raise DecodeError("could not write the raw lattice")
        with open(tmp, "rb") as f:
            buf = f.read()
    finally:
        os.unlink(tmp)
    return parse_vector_lattice(buf)


def parse_vector_lattice(buf: bytes) -> RawLattice:
    import struct

    pos = 4
    strs = []
    for _ in range(2):
        (n,) = struct.unpack_from("<i", buf, pos)
        strs.append(buf[pos + 4:pos + 4 + n].decode())
        pos += 4 + n
    if strs != ["vector", "lattice4"]:
        raise DecodeError(f"raw lattice: unexpected FST type {strs}")
    version, flags, props, start, ns, na = struct.unpack_from("<iiQqqq", buf, pos)
    pos += struct.calcsize("<iiQqqq")
    body = np.frombuffer(buf, np.int32, (len(buf) - pos) // 4, pos)
    # per state: final (2 x f32), int64 narcs, then narcs arcs of 5 int32 words
    heads = np.empty(ns, np.int64)
    narcs = np.empty(ns, np.int64)
    item = body.item
    p = 0
    for s in range(ns):  # one step per state; arcs are parsed in bulk below
        heads[s] = p
        k = item(p + 2)
        narcs[s] = k
        p += 4 + 5 * k
    fin = body.view(np.float32)
    final_g = fin[heads].copy() if ns else np.zeros(0, np.float32)
    final_a = fin[heads + 1].copy() if ns else np.zeros(0, np.float32)
    total = int(narcs.sum())
    first = heads + 4
    idx = (np.repeat(first - 5 * (np.cumsum(narcs) - narcs), narcs) + 5 * np.arange(total)) if total else np.zeros(0, np.int64)
    src = np.repeat(np.arange(ns, dtype=np.int32), narcs)
    ilabel = body[idx].copy()
    word = body[idx + 1].copy()
    g = fin[idx + 2].copy()
    a = fin[idx + 3].copy()
    dst = body[idx + 4].copy()
    return RawLattice(start, src, dst.astype(np.int32), ilabel, word, g, a, final_g, final_a)


# ----------------------------------------------------------------------------- pruning


def prune_raw(raw: RawLattice, beam: float) -> RawLattice:
    """Drop arcs and states that lie on no path within ``beam`` of the best (total cost)."""
    ns = raw.num_states
    if ns == 0 or raw.start < 0:
        return raw
    total = raw.g.astype(np.float64) + raw.a
    fwd_lat = Lattice(raw.src, raw.dst, raw.word, raw.g, raw.a, raw.final_g, raw.final_a, raw.start)
    alpha, _ = shortest_distance(fwd_lat, total)
    ftot = raw.final_g.astype(np.float64) + raw.final_a
    fin = np.flatnonzero(np.isfinite(ftot))
    # backward: reversed arcs from a super-initial state ns
    rsrc = np.concatenate([raw.dst, np.full(len(fin), ns, np.int32)])
    rdst = np.concatenate([raw.src, fin.astype(np.int32)])
    rcost = np.concatenate([total, ftot[fin]])
    z = np.zeros(len(rsrc), np.float32)
    rev = Lattice(rsrc, rdst, np.zeros(len(rsrc), np.int32), z, z,
                  np.full(ns + 1, np.inf, np.float32), np.full(ns + 1, np.inf, np.float32), ns)
    beta, _ = shortest_distance(rev, rcost)
    beta = beta[:ns]
    best = float(np.min(alpha + ftot)) if len(fin) else np.inf
    if not np.isfinite(best):
        return RawLattice(-1, *(x[:0] for x in (raw.src, raw.dst, raw.ilabel, raw.word, raw.g, raw.a)),
                          raw.final_g[:0], raw.final_a[:0])
    thr = best + beam
    keep_arc = alpha[raw.src] + total + beta[raw.dst] <= thr + 1e-4
    keep_state = alpha + beta <= thr + 1e-4
    keep_state[raw.start] = True
    new_id = np.full(ns, -1, np.int64)
    new_id[keep_state] = np.arange(int(keep_state.sum()))
    m = keep_arc & keep_state[raw.src] & keep_state[raw.dst]
    fg = raw.final_g[keep_state].copy()
    fa = raw.final_a[keep_state].copy()
    drop_final = ~(alpha[keep_state] + ftot[keep_state] <= thr + 1e-4)
    fg[drop_final] = np.inf
    fa[drop_final] = np.inf
    return RawLattice(int(new_id[raw.start]), new_id[raw.src[m]].astype(np.int32), new_id[raw.dst[m]].astype(np.int32),
                      raw.ilabel[m], raw.word[m], raw.g[m], raw.a[m], fg, fa)


def collapse_epsilon_chains(raw: RawLattice) -> RawLattice:
    """Merge each state that has exactly one incoming and one outgoing arc, the latter
    without a word, is not final and not the start, into a single arc (pair weights add). Vectorised
    by pointer jumping; the weighted word language is unchanged."""
    ns = raw.num_states
    if ns == 0 or len(raw.src) == 0:
        return raw
    indeg = np.bincount(raw.dst, minlength=ns)
    outdeg = np.bincount(raw.src, minlength=ns)
    eps = raw.word == 0
    out_eps = np.bincount(raw.src[eps], minlength=ns)
    mid = (indeg == 1) & (outdeg == 1) & (out_eps == 1) & ~np.isfinite(raw.final_g)
    mid[raw.start] = False
    if not mid.any():
        return raw
    # for every arc whose destination is a 'mid' state, follow the chain to its end
    out_arc = np.full(ns, -1, np.int64)
    out_arc[raw.src] = np.arange(len(raw.src))  # unique for mid states (outdeg 1)
    nxt_state = raw.dst.astype(np.int64).copy()
    acc_g = raw.g.astype(np.float64).copy()
    acc_a = raw.a.astype(np.float64).copy()
    # pointer jumping on states: jump[s] = state after s's chain segment, with summed weights
    jump = np.arange(ns, dtype=np.int64)
    jg = np.zeros(ns)
    ja = np.zeros(ns)
    ms = np.flatnonzero(mid)
    oa = out_arc[ms]
    jump[ms] = raw.dst[oa]
    jg[ms] = raw.g[oa]
    ja[ms] = raw.a[oa]
    active = ms
    while len(active):
        j = jump[active]
        cont = mid[j]
        if not cont.any():
            break
        a_ = active[cont]
        jj = j[cont]
        jg[a_] += jg[jj]
        ja[a_] += ja[jj]
        jump[a_] = jump[jj]
        active = a_
    keep_arc = ~mid[raw.src]
    d = nxt_state[keep_arc]
    g = acc_g[keep_arc] + jg[d]
    a = acc_a[keep_arc] + ja[d]
    d = jump[d]
    keep_state = ~mid
    new_id = np.full(ns, -1, np.int64)
    new_id[keep_state] = np.arange(int(keep_state.sum()))
    return RawLattice(int(new_id[raw.start]), new_id[raw.src[keep_arc]].astype(np.int32), new_id[d].astype(np.int32),
                      raw.ilabel[keep_arc], raw.word[keep_arc], g.astype(np.float32), a.astype(np.float32),
                      raw.final_g[keep_state], raw.final_a[keep_state])


# ----------------------------------------------------------------------------- determinization


def _better(x: tuple[float, float], y: tuple[float, float]) -> bool:
    sx, sy = x[0] + x[1], y[0] + y[1]
    return sx < sy or (sx == sy and x[0] < y[0])


def determinize(raw: RawLattice, max_states: int = 100_000, max_work: int | None = None) -> Lattice | None:
    """Word-level determinization in the (graph, acoustic) lattice semiring (see module doc).
    Returns None when more than ``max_states`` states would be needed or, with ``max_work``,
    when more than that many arc visits (epsilon closures and subset expansions together)
    would be done -- the effort cap that keeps a pathological lattice from taking minutes."""
    ns = raw.num_states
    if ns == 0 or raw.start < 0:
        return _empty()
    level = _levels(raw)
    order = np.argsort(raw.src, kind="stable")
    indptr = np.zeros(ns + 1, np.int64)
    np.cumsum(np.bincount(raw.src, minlength=ns), out=indptr[1:])
    s_word = raw.word[order].tolist()
    s_dst = raw.dst[order].tolist()
    s_g = raw.g[order].astype(np.float64).tolist()
    s_a = raw.a[order].astype(np.float64).tolist()
    ip = indptr.tolist()
    lev = level.tolist()
    fg = raw.final_g.astype(np.float64).tolist()
    fa = raw.final_a.astype(np.float64).tolist()
    has_word = np.zeros(ns, bool)
    has_word[raw.src[raw.word != 0]] = True
    relevant = (has_word | np.isfinite(raw.final_g)).tolist()
    has_eps = np.zeros(ns, bool)
    has_eps[raw.src[raw.word == 0]] = True
    has_eps = has_eps.tolist()
    budget = [float("inf") if max_work is None else int(max_work)]

    class _OverBudget(Exception):
        pass

    def spend(n: int) -> None:
        budget[0] -= n
        if budget[0] < 0:
            raise _OverBudget

    def closure(seeds: dict[int, tuple[float, float]]) -> tuple:
        best = dict(seeds)
        heap = [(lev[s], s) for s in seeds if has_eps[s]]
        heapq.heapify(heap)
        done = set()
        while heap:
            _, s = heapq.heappop(heap)
            if s in done:
                continue
            done.add(s)
            spend(ip[s + 1] - ip[s] + 1)
            bg, ba = best[s]
            for k in range(ip[s], ip[s + 1]):
                if s_word[k] != 0:
                    continue
                d = s_dst[k]
                cand = (bg + s_g[k], ba + s_a[k])
                old = best.get(d)
                if old is None or _better(cand, old):
                    best[d] = cand
                    if has_eps[d]:
                        heapq.heappush(heap, (lev[d], d))
        return tuple(sorted((s, w) for s, w in best.items() if relevant[s]))

    try:
        return _subsets(raw, max_states, closure, spend, ip, s_word, s_dst, s_g, s_a, fg, fa)
    except _OverBudget:
        return None


def _subsets(raw, max_states, closure, spend, ip, s_word, s_dst, s_g, s_a, fg, fa) -> Lattice | None:
    def key_of(subset: tuple) -> tuple:
        return tuple((s, round(g, 3), round(a, 3)) for s, (g, a) in subset)

    start_subset = closure({raw.start: (0.0, 0.0)})
    subsets = [start_subset]
    index = {key_of(start_subset): 0}
    a_src, a_dst, a_word, a_g, a_a = [], [], [], [], []
    final_g, final_a = [], []
    i = 0
    while i < len(subsets):
        subset = subsets[i]
        fbest = None
        by_word: dict[int, dict[int, tuple[float, float]]] = {}
        spend(len(subset))
        for s, (rg, ra) in subset:
            spend(ip[s + 1] - ip[s])
            if fg[s] != np.inf:
                cand = (rg + fg[s], ra + fa[s])
                if fbest is None or _better(cand, fbest):
                    fbest = cand
            for k in range(ip[s], ip[s + 1]):
                w = s_word[k]
                if w == 0:
                    continue
                cand = (rg + s_g[k], ra + s_a[k])
                dd = by_word.setdefault(w, {})
                d = s_dst[k]
                old = dd.get(d)
                if old is None or _better(cand, old):
                    dd[d] = cand
        final_g.append(fbest[0] if fbest else np.inf)
        final_a.append(fbest[1] if fbest else np.inf)
        for w in sorted(by_word):
            dd = by_word[w]
            common = None
            for c in dd.values():
                if common is None or _better(c, common):
                    common = c
            cg, ca = common
            nxt = closure({d: (g - cg, a - ca) for d, (g, a) in dd.items()})
            kk = key_of(nxt)
            j = index.get(kk)
            if j is None:
                j = len(subsets)
                if j >= max_states:
                    return None
                index[kk] = j
                subsets.append(nxt)
            a_src.append(i), a_dst.append(j), a_word.append(w), a_g.append(cg), a_a.append(ca)
        i += 1
    return Lattice(a_src, a_dst, a_word, a_g, a_a, final_g, final_a, 0)


def _levels(raw: RawLattice) -> np.ndarray:
    from asr.lattice.lattice_io import topological_levels

    return topological_levels(Lattice(raw.src, raw.dst, raw.word, raw.g, raw.a, raw.final_g, raw.final_a,
                                      max(raw.start, 0)))


def _empty() -> Lattice:
    z = np.zeros(0)
    return Lattice(z, z, z, z, z, z, z, -1)


# Effort cap of one determinization attempt, in arc visits: ordinary lattices need a few
# thousand to some tens of thousands; badly matched audio can need hundreds of millions
# (minutes of CPU). Kaldi's DeterminizeLatticePruned has the same kind of cap (max-mem,
# max-states, max-arcs) and likewise retries with a tighter beam. 2,000,000 arc visits is
# about 1.1 s of CPU. A few of the default recipe's test and test_hard lattices exceed it and
# are re-pruned (warned; test_hard rescored 13.31 % against 13.28 % without a cap);
# 20,000,000 still caught some of them, each after ~11 s, and made decoding much slower.
MAX_WORK = 2_000_000
_RETRIES = 3  # attempts at beam, beam/4, beam/16 before the 1-best fallback


def word_lattice(raw_lat, lattice_beam: float, acoustic_scale: float, max_states: int = 100_000,
                 max_work: int | None = None) -> tuple[Lattice, bool]:
    """The pruned, determinized word lattice of a decoder's raw lattice, acoustic costs
    unscaled (divided by ``acoustic_scale``), and whether it is a full lattice.
    ``raw_lat``: a kaldifst.Lattice or RawLattice.

    When determinization exceeds ``max_states`` or ``max_work`` (arc visits, default
    ``MAX_WORK``; see ``determinize``) it is
    retried on the raw lattice pruned with a tighter beam; when that fails too the result
    is the raw lattice's best path as a linear lattice (False is returned): the 1-best
    words and costs are the same, there are no alternatives. The caller names the
    utterance in its warning and counts such fallbacks."""
    raw = raw_lat if isinstance(raw_lat, RawLattice) else raw_lattice_from_kaldifst(raw_lat)
    max_work = MAX_WORK if max_work is None else max_work
    beam = float(lattice_beam)
    lat, full = None, True
    for _ in range(_RETRIES):
        lat = determinize(collapse_epsilon_chains(prune_raw(raw, beam)), max_states, max_work)
        if lat is not None:
            break
        log.warning("lattice determinization exceeded %d states or %d arc visits; retrying with lattice beam %.2f",
                    max_states, max_work, beam / 4)
        beam /= 4
    if lat is None:
        lat, full = _best_path_lattice(raw), False
    if lat.num_states:
        lat.acoustic = (lat.acoustic.astype(np.float64) / acoustic_scale).astype(np.float32)
        fa = lat.final_acoustic.astype(np.float64)
        lat.final_acoustic = np.where(np.isfinite(fa), fa / acoustic_scale, np.inf).astype(np.float32)
    return lat, full


def _best_path_lattice(raw: RawLattice) -> Lattice:
    """The raw lattice's best path (graph + scaled acoustic) as a linear word lattice: one
    arc per word carrying the costs since the previous word, the rest on the final state."""
    from asr.lattice.lattice_io import best_path

    if raw.num_states == 0 or raw.start < 0:
        return _empty()
    bp = best_path(raw.as_lattice(), lmwt=1.0)
    if bp is None:
        return _empty()
    words, gs, as_ = [], [], []
    g = a = 0.0
    for k in bp.arcs:
        g += float(raw.g[k])
        a += float(raw.a[k])
        if raw.word[k] != 0:
            words.append(int(raw.word[k])), gs.append(g), as_.append(a)
            g = a = 0.0
    g, a = bp.graph - sum(gs), bp.acoustic - sum(as_)  # the rest, final weight included
    n = len(words)
    return Lattice(np.arange(n), np.arange(1, n + 1), words, gs, as_,
                   [np.inf] * n + [g], [np.inf] * n + [a], 0)
