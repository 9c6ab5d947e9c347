"""``asr build-tree``: Kaldi-style decision-tree state tying (``tree/build-tree*.cc``).

1. Statistics: one diagonal Gaussian (count, Σx, Σx²) per seen (phone window, pdf class),
   from CMVN-normalised features and an alignment (transition-ids + its final.mdl).
2. Questions: bottom-up clustering of the phone sets of ``phones/sets.txt`` (Kaldi
   ``cluster-phones``: every cluster formed is a question), plus
   ``phones/extra_questions.txt``; asked about every context position. About the pdf
   class (HMM state): each single class and each prefix {0..k}.
3. Roots (``phones/roots.txt``): "shared" — all pdf classes of the line's phones start as
   one leaf (the tree may split on the pdf class); "not-shared" — one root per pdf class;
   "not-split" — never split. The roots hang under Kaldi's stub map on the central phone.
4. Greedy splitting: repeatedly split the leaf whose best question gains most likelihood,
   both halves keeping at least ``min_count`` frames, until ``num_leaves`` leaves (or no
   gain above ``thresh``).

Leaves are numbered in depth-first order; unseen contexts fall to the "no" side of every
question, so every phone window has a pdf.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from asr.errors import AlignmentError, ModelError
from asr.hmm.tree import PDF_CLASS, ConstantNode, allow_deep_trees, ContextDependency, SplitNode, TableNode, map_event, stub_map

log = logging.getLogger(__name__)

VAR_FLOOR = 0.01


@dataclass
class TreeStats:
    """Gaussian statistics per unique (phone window, pdf class)."""

    windows: np.ndarray  # int32 [M, N]
    pdf_classes: np.ndarray  # int32 [M]
    stats: np.ndarray  # float64 [M, 1 + 2D]: count, sum x, sum x^2
    context_width: int
    central_position: int

    @property
    def dim(self) -> int:
        return (self.stats.shape[1] - 1) // 2


class _StatsAccumulator:
    def __init__(self, N: int, P: int, num_phones: int, num_classes: int, dim: int, chunk_frames: int = 400_000):
        self.N, self.P = N, P
        self.B = num_phones + 1
        self.C = num_classes
        self.dim = dim
        self.chunk = chunk_frames
        self.keys: list[np.ndarray] = []
        self.feats: list[np.ndarray] = []
        self.n = 0
        self.parts: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, keys: np.ndarray, feats: np.ndarray) -> None:
        self.keys.append(keys)
        self.feats.append(feats)
        self.n += len(keys)
        if self.n >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        if not self.keys:
            return
        keys = np.concatenate(self.keys)
        x = np.concatenate(self.feats)
        self.keys, self.feats, self.n = [], [], 0
        uniq, inv = np.unique(keys, return_inverse=True)
        inv = inv.reshape(-1)
        m = len(uniq)
        st = np.empty((m, 1 + 2 * self.dim))
        st[:, 0] = np.bincount(inv, minlength=m)
        for d in range(self.dim):  # column-wise bincount: no [n, 2D] float64 copy
            col = x[:, d].astype(np.float64)
            st[:, 1 + d] = np.bincount(inv, weights=col, minlength=m)
            st[:, 1 + self.dim + d] = np.bincount(inv, weights=col * col, minlength=m)
        self.parts.append((uniq, st))

    def result(self) -> TreeStats:
        self._flush()
        if not self.parts:
            raise AlignmentError("no frames to accumulate tree statistics from")
        keys = np.unique(np.concatenate([k for k, _ in self.parts]))
        st = np.zeros((len(keys), self.parts[0][1].shape[1]))
        for k, part in self.parts:  # keys are unique within a part
            st[np.searchsorted(keys, k)] += part
        self.parts = []
        pc = (keys % self.C).astype(np.int32)
        rest = keys // self.C
        windows = np.zeros((len(keys), self.N), dtype=np.int32)
        for k in range(self.N - 1, -1, -1):
            windows[:, k] = rest % self.B
            rest //= self.B
        return TreeStats(windows, pc, st, self.N, self.P)


def accumulate_stats(feature_reader, alignments: dict[str, np.ndarray], tm, context_width: int = 3,
                     central_position: int = 1, progress: bool = True) -> tuple[TreeStats, dict]:
    """Tree statistics from transition-id alignments. Returns (stats, counts)."""
    from tqdm import tqdm

    from asr.hmm.kaldi_ali import split_to_phones

    topo = tm.topo
    max_phone = max(topo.phones)
    max_s = max(len(e) for e in topo.entries)
    fwd_class = np.full((max_phone + 1, max_s), -1, dtype=np.int64)
    for p in topo.phones:
        for j, st in enumerate(topo.topology_for_phone(p)):
            fwd_class[p, j] = st.forward_pdf_class
    num_classes = int(fwd_class.max()) + 1
    N, P = context_width, central_position
    acc = None
    counts = {"utterances": 0, "frames": 0, "skipped_no_features": 0, "skipped_length": 0}
    B = max_phone + 1
    for utt in tqdm(sorted(alignments), desc="tree stats", unit="utt", disable=None if progress else True,
                    leave=False):
        if utt not in feature_reader:
            counts["skipped_no_features"] += 1
            continue
        ali = alignments[utt]
        feats = feature_reader[utt]
        if len(feats) != len(ali):
            counts["skipped_length"] += 1
            log.warning("utterance %s: %d alignment frames but %d feature frames (skipped)", utt, len(ali), len(feats))
            continue
        if acc is None:
            acc = _StatsAccumulator(N, P, max_phone, num_classes, feats.shape[1])
        phones, lengths = split_to_phones(tm, ali, utt)
        padded = np.concatenate([np.zeros(P, np.int64), phones, np.zeros(N - 1 - P, np.int64)])
        code = np.zeros(len(phones), dtype=np.int64)
        for k in range(N):
            code = code * B + padded[k : k + len(phones)]
        inst = np.repeat(np.arange(len(phones)), lengths)
        pc = fwd_class[tm.tid2phone[ali], tm.tid2hmm_state[ali]]
        acc.add(code[inst] * num_classes + pc, feats)
        counts["utterances"] += 1
        counts["frames"] += len(ali)
    if acc is None:
        raise AlignmentError("no utterance has both an alignment and features")
    return acc.result(), counts


def gauss_loglike(st: np.ndarray, var_floor: float = VAR_FLOOR) -> np.ndarray:
    """Log-likelihood of the data under its own ML diagonal Gaussian, per row of stats."""
    st = np.atleast_2d(st)
    d = (st.shape[1] - 1) // 2
    n = st[:, 0]
    safe = np.where(n > 0, n, 1.0)
    mean = st[:, 1 : 1 + d] / safe[:, None]
    var = np.maximum(st[:, 1 + d :] / safe[:, None] - mean * mean, var_floor)
    ll = -0.5 * n * (np.log(var).sum(axis=1) + d * (1.0 + math.log(2 * math.pi)))
    return np.where(n > 0, ll, 0.0)


def cluster_phones(stats: TreeStats, sets: list[list[int]]) -> list[list[int]]:
    """Bottom-up (agglomerative) clustering of phone sets by the likelihood loss of merging
    their central-phone Gaussians; returns every cluster formed (the questions)."""
    P = stats.central_position
    central = stats.windows[:, P]
    owner = np.full(int(max(max(s) for s in sets)) + 1 if sets else 1, -1, dtype=np.int64)
    for i, s in enumerate(sets):
        owner[s] = i
    valid = (central < len(owner))
    own = np.where(valid, owner[np.minimum(central, len(owner) - 1)], -1)
    C = stats.stats.shape[1]
    unit = np.zeros((len(sets), C))
    m = own >= 0
    np.add.at(unit, own[m], stats.stats[m])
    clusters = [list(s) for s in sets]
    cstats = [unit[i] for i in range(len(sets))]
    questions = [sorted(c) for c in clusters]
    while len(clusters) > 1:
        S = np.array(cstats)
        L = gauss_loglike(S)
        iu, ju = np.triu_indices(len(clusters), 1)
        merged = S[iu] + S[ju]
        loss = L[iu] + L[ju] - gauss_loglike(merged)
        k = int(np.argmin(loss))
        i, j = int(iu[k]), int(ju[k])
        new = clusters[i] + clusters[j]
        new_st = cstats[i] + cstats[j]
        for idx in (j, i):
            del clusters[idx]
            del cstats[idx]
        clusters.append(new)
        cstats.append(new_st)
        questions.append(sorted(new))
    return questions


@dataclass
class _Leaf:
    entries: np.ndarray
    keys: tuple[int, ...]
    splittable: bool
    node: dict = field(default_factory=dict)


def build_tree(stats: TreeStats, roots: list[tuple[bool, bool, list[int]]], num_pdf_classes: dict[int, int],
               questions: list[list[int]], num_leaves: int = 1500, min_count: float = 50.0,
               thresh: float = 0.0) -> tuple[ContextDependency, dict]:
    """Grow the tree; returns (tree, info with leaves, likelihood before/after, gain)."""
    t0 = time.time()
    N, P = stats.context_width, stats.central_position
    phone_sets = [sorted(r[2]) for r in roots]
    shared = [r[0] for r in roots]
    counter = [0]
    stub = stub_map(P, phone_sets, num_pdf_classes, shared, counter)
    n_stub = counter[0]
    all_phones = sorted(p for s in phone_sets for p in s)
    max_phone = max(all_phones)
    # stub leaf of each stats entry
    cls_max = max(num_pdf_classes[p] for p in all_phones)
    lut = np.full((max_phone + 1, cls_max), -1, dtype=np.int64)
    leaf_split = np.ones(n_stub, dtype=bool)
    leaf_classes: dict[int, set] = {}
    for root_i, s in enumerate(phone_sets):
        for p in s:
            for c in range(num_pdf_classes[p]):
                leaf = map_event(stub, {P: p, PDF_CLASS: c})
                lut[p, c] = leaf
                leaf_split[leaf] = roots[root_i][1]
                leaf_classes.setdefault(leaf, set()).add(c)
    central = stats.windows[:, P].astype(np.int64)
    ok = (central <= max_phone) & (stats.pdf_classes < cls_max)
    entry_leaf = np.full(len(central), -1, dtype=np.int64)
    entry_leaf[ok] = lut[central[ok], stats.pdf_classes[ok]]
    if np.any(entry_leaf < 0):
        bad = int(central[entry_leaf < 0][0])
        raise ModelError(f"build-tree: phone {bad} of the alignments is in no line of roots.txt")
    # question matrices
    V = max(max_phone, int(stats.windows.max())) + 1
    qsets = sorted({tuple(sorted(set(q))) for q in questions if q})
    Qp = np.zeros((len(qsets), V), dtype=np.float64)
    for i, q in enumerate(qsets):
        Qp[i, [p for p in q if p < V]] = 1.0
    cq = sorted({(c,) for c in range(cls_max)} | {tuple(range(k + 1)) for k in range(cls_max - 1)})
    Qc = np.zeros((len(cq), cls_max), dtype=np.float64)
    for i, q in enumerate(cq):
        Qc[i, list(q)] = 1.0
    St = stats.stats
    W = stats.windows
    PC = stats.pdf_classes

    def best_split(leaf: _Leaf):
        E = leaf.entries
        if not leaf.splittable or len(E) < 2:
            return None
        S = St[E]
        tot = S.sum(axis=0)
        if tot[0] < 2 * min_count:
            return None
        L0 = gauss_loglike(tot)[0]
        best = None
        for key in leaf.keys:
            if key == PDF_CLASS:
                v, Q, qs = PC[E], Qc, cq
            else:
                v, Q, qs = W[E, key], Qp, qsets
            uv, inv = np.unique(v, return_inverse=True)
            if len(uv) < 2:
                continue
            agg = np.zeros((len(uv), S.shape[1]))
            np.add.at(agg, inv.reshape(-1), S)
            yes = Q[:, uv] @ agg
            no = tot[None, :] - yes
            good = (yes[:, 0] >= min_count) & (no[:, 0] >= min_count)
            if not good.any():
                continue
            gains = np.where(good, gauss_loglike(yes) + gauss_loglike(no) - L0, -np.inf)
            i = int(np.argmax(gains))
            if best is None or gains[i] > best[0]:
                best = (float(gains[i]), key, qs[i])
        return best

    leaves: list[_Leaf] = []
    for leaf_id in range(n_stub):
        E = np.nonzero(entry_leaf == leaf_id)[0]
        keys = tuple(range(N)) + ((PDF_CLASS,) if len(leaf_classes.get(leaf_id, ())) > 1 else ())
        leaves.append(_Leaf(E, keys, bool(leaf_split[leaf_id]), {"leaf": True}))
    L_before = float(sum(gauss_loglike(St[lf.entries].sum(axis=0))[0] for lf in leaves if len(lf.entries)))
    heap = []
    for i, lf in enumerate(leaves):
        b = best_split(lf)
        if b is not None:
            heapq.heappush(heap, (-b[0], i, b))
    n_leaves = n_stub
    total_gain = 0.0
    while n_leaves < num_leaves and heap:
        neg, i, (gain, key, qset) = heapq.heappop(heap)
        if gain <= thresh:
            break
        lf = leaves[i]
        v = PC[lf.entries] if key == PDF_CLASS else W[lf.entries, key]
        mask = np.isin(v, np.array(qset))
        yes = _Leaf(lf.entries[mask], lf.keys, True, {"leaf": True})
        no = _Leaf(lf.entries[~mask], lf.keys, True, {"leaf": True})
        lf.node.clear()
        lf.node.update({"leaf": False, "key": key, "set": frozenset(qset), "yes": yes.node, "no": no.node})
        total_gain += gain
        n_leaves += 1
        for child in (yes, no):
            leaves.append(child)
            b = best_split(child)
            if b is not None:
                heapq.heappush(heap, (-b[0], len(leaves) - 1, b))
    # assemble: replace stub leaves by grown subtrees, number leaves depth-first
    allow_deep_trees()
    next_pdf = [0]

    def to_map(node: dict):
        if node["leaf"]:
            next_pdf[0] += 1
            return ConstantNode(next_pdf[0] - 1)
        yes = to_map(node["yes"])
        no = to_map(node["no"])
        return SplitNode(node["key"], node["set"], yes, no)

    def replace(n):
        if isinstance(n, ConstantNode):
            return to_map(leaves[n.answer].node)
        if isinstance(n, TableNode):
            return TableNode(n.key, [None if c is None else replace(c) for c in n.table])
        return SplitNode(n.key, n.yes_set, replace(n.yes), replace(n.no))

    tree = ContextDependency(N, P, replace(stub))
    info = {"leaves": tree.num_pdfs, "stub_leaves": n_stub, "questions": len(qsets),
            "contexts": int(len(St)), "frames": float(St[:, 0].sum()),
            "loglike_before": L_before, "loglike_gain": total_gain,
            "gain_per_frame": total_gain / max(float(St[:, 0].sum()), 1.0),
            "seconds": round(time.time() - t0, 2)}
    log.info("tree: %d leaves (%d roots), likelihood gain %.4g (%.4f per frame) in %.1f s",
             info["leaves"], n_stub, total_gain, info["gain_per_frame"], info["seconds"])
    return tree, info
