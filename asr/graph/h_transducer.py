"""The H transducer (transition-ids -> context-dependent phones), Kaldi ``GetHTransducer``.

For every input label of CLG (an ``ilabels`` entry from ``compose_context``: a phone window
of length N, ``[]`` for epsilon, or a single value <= 0 for a disambiguation symbol), the HMM
of the window's central phone without self-loops (``GetHmmAsFsa``: pdfs from the tree, one
arc per non-self-loop transition labelled with its transition-id and weighted by
``-log p(transition | not self-loop) * transition_scale``) is attached to one loop state
(``MakeLoopFst``). The window's CLG label is emitted on the first arc when the HMM start
state has a single arc and no incoming arcs (it then *is* the loop state), otherwise on an
epsilon arc into the HMM. Windows whose central phone and pdfs agree share one HMM copy.
Disambiguation symbols become new transition-id-side symbols ``num_tids + 1, ...``
(returned, to be removed after determinization).

Everything except the per-unique-HMM table lookups is vectorised.
"""

from __future__ import annotations

import logging

import numpy as np

from asr.errors import GraphError
from asr.graph.fst_arrays import FstArrays

log = logging.getLogger(__name__)

NO_PDF = -1


def make_h_transducer(ilabels: list[list[int]], tree, trans_model, transition_scale: float = 1.0
                      ) -> tuple[FstArrays, list[int]]:
    """Return ``(Ha, disambig_tids)``; Ha's input labels are transition-ids (plus the
    disambiguation symbols ``disambig_tids``), output labels are indexes into ``ilabels``."""
    if ilabels and len(ilabels[0]) != 0:
        raise GraphError("ilabels[0] must be the empty window (epsilon)")
    N, P = tree.context_width, tree.central_position
    topo = trans_model.topo
    num_tids = int(trans_model.num_transition_ids)

    # --- classify ilabels; pdfs of each real window --------------------------------------
    disambig_j, phone_j, windows = [], [], []
    for j in range(1, len(ilabels)):
        w = ilabels[j]
        if len(w) == 0:
            raise GraphError(f"ilabels entry {j} is empty (only entry 0 may be)")
        if len(w) == 1 and w[0] <= 0:
            disambig_j.append(j)
        else:
            if len(w) != N:
                raise GraphError(f"ilabels entry {j} has window {w}, tree context width is {N}")
            if w[P] == 0:
                raise GraphError(f"ilabels entry {j}: window {w} has no central phone")
            phone_j.append(j)
            windows.append(tuple(w))

    # pdf of every (window, pdf class) via the tree, one lookup per distinct pair.
    win_arr = np.array(windows, dtype=np.int64).reshape(-1, N)
    central = win_arr[:, P] if len(windows) else np.zeros(0, np.int64)
    uphones = np.unique(central)
    npc_arr = np.zeros(int(uphones.max()) + 1 if len(uphones) else 1, np.int64)
    for p in uphones.tolist():
        npc_arr[p] = topo.num_pdf_classes(p)
    max_pc = int(npc_arr.max())
    pdfs = np.full((len(windows), max_pc), -1, dtype=np.int64)
    for c in range(max_pc):
        rows = np.flatnonzero(npc_arr[central] > c)
        if len(rows) == 0:
            continue
        pdfs[rows, c] = compute_pdfs(tree, win_arr[rows], c)
        bad = rows[pdfs[rows, c] < 0] if len(rows) else []
        if len(bad):
            raise GraphError(f"tree gives no pdf for phone window {windows[bad[0]]}, pdf class {c}")

    # Distinct HMMs: (central phone, pdf vector).
    keys = np.concatenate([central[:, None], pdfs], axis=1) if len(windows) else np.zeros((0, 1 + max_pc), np.int64)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)

    # --- build the distinct HMMs, vectorised per topology entry -------------------------
    # transition state of (phone, hmm_state, forward pdf, self-loop pdf) by binary search in
    # the transition model's sorted tuples
    tuples = np.asarray(trans_model.tuples, dtype=np.int64)
    radix = np.maximum(tuples.max(axis=0) + 2, [1, 1, 1, 1])
    radix[2:] = max(radix[2], radix[3], int(pdfs.max()) + 2 if pdfs.size else 1)

    def tkey(a, b, c, d):
        return ((a * radix[1] + b) * radix[2] + c) * radix[3] + d

    tkeys = tkey(tuples[:, 0], tuples[:, 1], tuples[:, 2], tuples[:, 3])
    korder = np.argsort(tkeys)
    state2id = np.asarray(trans_model.state2id, dtype=np.int64)
    ignoring = _log_probs_ignoring_self_loops(trans_model)
    K = len(uniq)
    h_nstates = np.zeros(K, np.int64)
    h_shared = np.zeros(K, bool)
    parts = []  # (k array, src, dst, tid, weight) per template arc
    uphone = uniq[:, 0] if K else np.zeros(0, np.int64)
    groups: dict[int, tuple[list, list[int]]] = {}
    for p in np.unique(uphone).tolist():
        entry = topo.topology_for_phone(p)
        groups.setdefault(id(entry), (entry, []))[1].append(p)
    for entry, phones in groups.values():
        ks = np.flatnonzero(np.isin(uphone, phones))
        n = len(entry)
        template = [(hs, dest, ti, prob, st) for hs, st in enumerate(entry)
                    for ti, (dest, prob) in enumerate(st.transitions) if dest != hs]
        start_in = any(d == 0 for _, d, _, _, _ in template)
        n_start = sum(1 for hs, *_ in template if hs == 0)
        # Kaldi's GetHmmAsFsa: start = state 0, final = last state (weight One).
        h_nstates[ks] = n
        h_shared[ks] = (not start_in) and n_start == 1 and n > 1
        for hs, dest, ti, prob, st in template:
            if st.forward_pdf_class == NO_PDF:
                tid = np.zeros(len(ks), np.int64)
                w = np.full(len(ks), -np.log(prob) * transition_scale)
            else:
                fpdf = uniq[ks, 1 + st.forward_pdf_class]
                slpdf = uniq[ks, 1 + st.self_loop_pdf_class]
                want = tkey(uniq[ks, 0], np.full(len(ks), hs), fpdf, slpdf)
                pos = np.searchsorted(tkeys, want, sorter=korder)
                pos = np.minimum(pos, len(tkeys) - 1)
                found = tkeys[korder[pos]] == want
                if not found.all():
                    i = int(np.flatnonzero(~found)[0])
                    raise GraphError(f"transition model has no tuple (phone {uniq[ks[i], 0]}, state {hs}, pdfs "
                                     f"{fpdf[i]}/{slpdf[i]}): tree and model do not match")
                tstate = korder[pos] + 1
                tid = state2id[tstate] + ti
                w = -ignoring[tid] * transition_scale
            parts.append((ks, np.full(len(ks), hs), np.full(len(ks), dest), tid, w))
    cat = (lambda i, dt: np.concatenate([q[i] for q in parts]).astype(dt)) if parts else (
        lambda i, dt: np.zeros(0, dt))
    h_of, h_src, h_dst, h_tid = cat(0, np.int64), cat(1, np.int64), cat(2, np.int64), cat(3, np.int64)
    h_w = cat(4, np.float32)
    h_final = h_nstates - 1

    # --- lay the HMMs out around loop state 0 --------------------------------------------
    # Each distinct HMM k gets its own block of states; a shared start state maps to 0.
    block = h_nstates - h_shared  # states allocated
    base = 1 + np.concatenate(([0], np.cumsum(block)[:-1])) if len(block) else np.zeros(0, np.int64)

    def gstate(k, s):
        # local state s of HMM k -> global id
        off = np.where(h_shared[k], s - 1, s)
        g = base[k] + off
        return np.where(h_shared[k] & (s == 0), 0, g)

    num_states = 1 + int(block.sum())
    src_parts, dst_parts, il_parts, ol_parts, w_parts = [], [], [], [], []

    # (a) HMM arcs not leaving a shared start (olabel 0), once per distinct HMM
    m = ~(h_shared[h_of] & (h_src == 0))
    src_parts.append(gstate(h_of[m], h_src[m])), dst_parts.append(gstate(h_of[m], h_dst[m]))
    il_parts.append(h_tid[m]), ol_parts.append(np.zeros(int(m.sum()), np.int64)), w_parts.append(h_w[m])

    # (b) entry arcs, one per ilabel j: the shared start arc with olabel j, or eps:j into the HMM
    phone_j = np.array(phone_j, dtype=np.int64)
    kj = inverse  # distinct HMM of each real window
    start_arc = np.full(len(uniq), -1, np.int64)
    sm = h_shared[h_of] & (h_src == 0)
    start_arc[h_of[sm]] = np.flatnonzero(sm)
    sh = h_shared[kj]
    a = start_arc[kj[sh]]
    src_parts.append(np.zeros(int(sh.sum()), np.int64)), dst_parts.append(gstate(kj[sh], h_dst[a]))
    il_parts.append(h_tid[a]), ol_parts.append(phone_j[sh]), w_parts.append(h_w[a])
    ns_ = ~sh
    src_parts.append(np.zeros(int(ns_.sum()), np.int64)), dst_parts.append(gstate(kj[ns_], np.zeros(int(ns_.sum()), np.int64)))
    il_parts.append(np.zeros(int(ns_.sum()), np.int64)), ol_parts.append(phone_j[ns_])
    w_parts.append(np.zeros(int(ns_.sum()), np.float32))

    # (c) final state of each HMM back to the loop state
    ks = np.arange(len(uniq))
    src_parts.append(gstate(ks, h_final)), dst_parts.append(np.zeros(len(uniq), np.int64))
    il_parts.append(np.zeros(len(uniq), np.int64)), ol_parts.append(np.zeros(len(uniq), np.int64))
    w_parts.append(np.zeros(len(uniq), np.float32))

    # (d) disambiguation symbols: 0 -dsym:j-> new state -eps-> 0
    nd = len(disambig_j)
    disambig_tids = list(range(num_tids + 1, num_tids + 1 + nd))
    dstates = np.arange(num_states, num_states + nd, dtype=np.int64)
    num_states += nd
    src_parts.append(np.zeros(nd, np.int64)), dst_parts.append(dstates)
    il_parts.append(np.array(disambig_tids, np.int64)), ol_parts.append(np.array(disambig_j, np.int64))
    w_parts.append(np.zeros(nd, np.float32))
    src_parts.append(dstates), dst_parts.append(np.zeros(nd, np.int64))
    il_parts.append(np.zeros(nd, np.int64)), ol_parts.append(np.zeros(nd, np.int64)), w_parts.append(np.zeros(nd, np.float32))

    final = np.full(num_states, np.inf, np.float32)
    final[0] = 0.0
    fa = FstArrays(
        0, final,
        np.concatenate(src_parts).astype(np.int32), np.concatenate(il_parts).astype(np.int32),
        np.concatenate(ol_parts).astype(np.int32), np.concatenate(w_parts).astype(np.float32),
        np.concatenate(dst_parts).astype(np.int32),
    )
    log.info("H: %d windows, %d distinct HMMs, %d disambiguation symbols, %d states, %d arcs",
             len(windows), len(uniq), nd, fa.num_states, fa.num_arcs)
    return fa.sorted_arcs("olabel"), disambig_tids


def compute_pdfs(tree, windows: np.ndarray, pdf_class: int) -> np.ndarray:
    """``tree.compute(window, pdf_class)`` for every row of ``windows`` [M, N], vectorised:
    the rows descend the event map together, split by each node's question (-1 = no pdf)."""
    from asr.hmm.tree import ConstantNode, SplitNode, TableNode

    windows = np.asarray(windows, dtype=np.int64)
    out = np.full(len(windows), -1, np.int64)
    root = getattr(tree, "to_pdf", None)
    if root is None:  # another tree implementation: per-row lookups
        for r in range(len(windows)):
            a = tree.compute(tuple(int(x) for x in windows[r]), pdf_class)
            out[r] = -1 if a is None else a
        return out
    stack = [(root, np.arange(len(windows)))]
    while stack:
        node, rows = stack.pop()
        if node is None or len(rows) == 0:
            continue
        if isinstance(node, ConstantNode):
            out[rows] = node.answer
            continue
        vals = np.full(len(rows), pdf_class, np.int64) if node.key == -1 else windows[rows, node.key]
        if isinstance(node, TableNode):
            ok = (vals >= 0) & (vals < len(node.table))
            rows, vals = rows[ok], vals[ok]
            order = np.argsort(vals, kind="stable")
            rows, vals = rows[order], vals[order]
            uv, first = np.unique(vals, return_index=True)
            bounds = np.append(first, len(vals))
            for i, v in enumerate(uv.tolist()):
                stack.append((node.table[v], rows[bounds[i]:bounds[i + 1]]))
        elif isinstance(node, SplitNode):
            yes = np.isin(vals, np.fromiter(node.yes_set, np.int64, len(node.yes_set)))
            stack.append((node.yes, rows[yes]))
            stack.append((node.no, rows[~yes]))
        else:
            raise GraphError(f"unknown tree node {type(node).__name__}")
    return out


def _log_probs_ignoring_self_loops(tm) -> np.ndarray:
    """``log p(tid) - log(1 - p(self-loop of its state))`` for every transition-id."""
    lp = np.asarray(tm.log_probs, dtype=np.float64)
    nsl = np.asarray(tm.non_self_loop_log_probs, dtype=np.float64)
    out = lp - nsl[np.asarray(tm.tid2tstate)]
    out[0] = 0.0
    return out
