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
    npc = {int(p): topo.num_pdf_classes(int(p)) for p in np.unique(central)}
    max_pc = max(npc.values(), default=0)
    pdfs = np.full((len(windows), max_pc), -1, dtype=np.int64)
    for c in range(max_pc):
        rows = np.flatnonzero(np.array([npc[int(p)] > c for p in central], dtype=bool)) if len(windows) else []
        if len(rows) == 0:
            continue
        if hasattr(tree, "compute_many"):
            pdfs[rows, c] = tree.compute_many(win_arr[rows], np.full(len(rows), c))
        else:
            for r in rows:
                a = tree.compute(tuple(int(x) for x in win_arr[r]), c)
                pdfs[r, c] = -1 if a is None else a
        bad = rows[pdfs[rows, c] < 0] if len(rows) else []
        if len(bad):
            raise GraphError(f"tree gives no pdf for phone window {windows[bad[0]]}, pdf class {c}")

    # Distinct HMMs: (central phone, pdf vector).
    keys = np.concatenate([central[:, None], pdfs], axis=1) if len(windows) else np.zeros((0, 1 + max_pc), np.int64)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)

    # --- build each distinct HMM (arcs as lists; one entry per distinct HMM arc) ---------
    tuple_index = trans_model._tuple_index if hasattr(trans_model, "_tuple_index") else None
    state2id = np.asarray(trans_model.state2id)
    ignoring = _log_probs_ignoring_self_loops(trans_model)
    h_src, h_dst, h_tid, h_w, h_of = [], [], [], [], []  # arcs of distinct HMMs (local state ids)
    h_nstates, h_final, h_shared = [], [], []
    for k, row in enumerate(uniq.tolist()):
        phone, pv = row[0], row[1:]
        entry = topo.topology_for_phone(phone)
        n = len(entry)
        arcs_here = []
        for hs, st in enumerate(entry):
            if st.forward_pdf_class == NO_PDF:
                fpdf = slpdf = NO_PDF
                tstate = None
            else:
                fpdf, slpdf = pv[st.forward_pdf_class], pv[st.self_loop_pdf_class]
                key = (phone, hs, fpdf, slpdf)
                tstate = tuple_index.get(key) if tuple_index is not None else trans_model.tuple_to_tstate(*key)
                if tstate is None:
                    raise GraphError(f"transition model has no tuple {key} (tree and model do not match)")
            for ti, (dest, prob) in enumerate(st.transitions):
                if dest == hs:
                    continue
                if tstate is None:
                    tid, lp = 0, float(np.log(prob))
                else:
                    tid = int(state2id[tstate] + ti)
                    lp = float(ignoring[tid])
                arcs_here.append((hs, dest, tid, -lp * transition_scale))
        start_in = any(d == 0 for _, d, _, _ in arcs_here)
        n_start = sum(1 for s, _, _, _ in arcs_here if s == 0)
        # Kaldi's GetHmmAsFsa: start = state 0, final = last state (weight One).
        shared = (not start_in) and n_start == 1 and n - 1 != 0
        for s, d, t, w in arcs_here:
            h_src.append(s), h_dst.append(d), h_tid.append(t), h_w.append(w), h_of.append(k)
        h_nstates.append(n)
        h_final.append(n - 1)
        h_shared.append(shared)
    h_src, h_dst, h_tid = (np.array(a, dtype=np.int64) for a in (h_src, h_dst, h_tid))
    h_w = np.array(h_w, dtype=np.float32)
    h_of = np.array(h_of, dtype=np.int64)
    h_nstates = np.array(h_nstates, dtype=np.int64)
    h_final = np.array(h_final, dtype=np.int64)
    h_shared = np.array(h_shared, dtype=bool)

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


def _log_probs_ignoring_self_loops(tm) -> np.ndarray:
    """``log p(tid) - log(1 - p(self-loop of its state))`` for every transition-id."""
    lp = np.asarray(tm.log_probs, dtype=np.float64)
    nsl = np.asarray(tm.non_self_loop_log_probs, dtype=np.float64)
    out = lp - nsl[np.asarray(tm.tid2tstate)]
    out[0] = 0.0
    return out
