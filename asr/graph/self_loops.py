"""HMM self-loops on a graph without them: Kaldi ``AddSelfLoops`` with ``reorder=true``.

1. States are split so that all arcs entering a state carry transition-ids of the same
   transition state (``MakePrecedingInputSymbolsSameClass``; epsilon and disambiguation
   symbols form class 0, and the start state counts as entered by epsilon).
2. A state entered from transition state ``t`` gets the self-loop of ``t``
   (``-log p(self-loop) * scale``, output epsilon) and all its leaving arcs and its final
   weight are multiplied by ``p(not self-loop)`` (``-log(1 - p(self-loop)) * scale``).

So the self-loop of an HMM state follows the transition into it ("reordered"), which is
what Kaldi's decoders and alignment tools expect from a graph made with ``--reorder=true``.
All operations are vectorised over arcs.
"""

from __future__ import annotations

import numpy as np

from asr.graph.fst_arrays import FstArrays


def add_self_loops(fa: FstArrays, trans_model, self_loop_scale: float = 0.1) -> FstArrays:
    num_tids = int(trans_model.num_transition_ids)
    tid2tstate = np.asarray(trans_model.tid2tstate, dtype=np.int64)
    il = fa.ilabel.astype(np.int64)
    cls = np.zeros(len(il), np.int64)
    real = (il >= 1) & (il <= num_tids)
    cls[real] = tid2tstate[il[real]]

    # --- split states by the class of their incoming arcs --------------------------------
    n = fa.num_states
    # (dst, class) pairs that occur, plus (start, 0) for the start state
    ncls = int(cls.max(initial=0)) + 1
    ukey = np.unique(np.concatenate([fa.dst.astype(np.int64) * ncls + cls, [int(fa.start) * ncls]]))
    upairs = np.stack([ukey // ncls, ukey % ncls], axis=1)  # sorted by state, then class
    state_of = upairs[:, 0]
    first = np.ones(len(upairs), bool)
    first[1:] = state_of[1:] != state_of[:-1]
    # The start state keeps its id for class 0 (sorted first since classes >= 0); every other
    # state keeps its id for its smallest incoming class; extra classes get new states.
    new_ids = np.where(first, state_of, 0)
    extra = ~first
    new_ids[extra] = n + np.arange(int(extra.sum()))
    total = n + int(extra.sum())
    copy_of = np.concatenate([np.arange(n), state_of[extra]])  # original of each state
    state_class = np.zeros(total, np.int64)
    state_class[new_ids] = upairs[:, 1]
    entered = np.zeros(total, bool)
    entered[new_ids] = True

    # arcs of every (possibly copied) state: copies repeat the original's arcs
    order = np.argsort(fa.src, kind="stable")
    src0, dst0, il0, ol0, w0, cls0 = (fa.src[order].astype(np.int64), fa.dst[order].astype(np.int64), il[order],
                                      fa.olabel[order].astype(np.int64), fa.weight[order].astype(np.float64),
                                      cls[order])
    starts = np.searchsorted(src0, np.arange(n + 1))
    cnt = (starts[1:] - starts[:-1])[copy_of]
    idx = np.repeat(starts[:-1][copy_of] - np.cumsum(cnt) + cnt, cnt) + np.arange(int(cnt.sum()))
    src = np.repeat(np.arange(total), cnt)
    dst_orig, ilab, olab, w, acls = dst0[idx], il0[idx], ol0[idx], w0[idx].copy(), cls0[idx]
    # redirect each arc to the copy of its destination for its class
    dst = new_ids[np.searchsorted(ukey, dst_orig * ncls + acls)]
    final = fa.final.astype(np.float64)[copy_of]

    # --- self-loops and forward-probability scaling ---------------------------------------
    nsl = np.asarray(trans_model.non_self_loop_log_probs, dtype=np.float64)
    sc = state_class
    has = sc > 0
    fwd = np.zeros(total)
    fwd[has] = -nsl[sc[has]] * self_loop_scale
    w += fwd[src]
    final = final + fwd  # inf stays inf
    # self-loop tid of each transition state
    sl_tid = np.zeros(len(nsl), np.int64)
    is_sl = np.asarray(trans_model.is_self_loop, dtype=bool)
    tids = np.flatnonzero(is_sl)
    sl_tid[tid2tstate[tids]] = tids
    loop_states = np.flatnonzero(has & (sl_tid[sc] > 0))
    loop_tid = sl_tid[sc[loop_states]]
    loop_w = -np.asarray(trans_model.log_probs, dtype=np.float64)[loop_tid] * self_loop_scale

    out = FstArrays(
        int(fa.start), final.astype(np.float32),
        np.concatenate([src, loop_states]).astype(np.int32),
        np.concatenate([ilab, loop_tid]).astype(np.int32),
        np.concatenate([olab, np.zeros(len(loop_states), np.int64)]).astype(np.int32),
        np.concatenate([w, loop_w]).astype(np.float32),
        np.concatenate([dst, loop_states]).astype(np.int32),
    )
    return out
