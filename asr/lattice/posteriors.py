"""Arc posteriors of a word lattice (forward-backward in the log semiring).

A path's probability is proportional to ``exp(-(graph + acoustic_scale * acoustic))``
(LM weight 1, acoustic costs unscaled as stored, as Kaldi's ``lattice-to-post
--acoustic-scale``); an arc's posterior is the total probability of the paths through it.
Vectorised one topological level at a time (``np.logaddexp.reduceat``), like
``lattice_io.shortest_distance``.
"""

from __future__ import annotations

import numpy as np

from asr.lattice.lattice_io import Lattice, topological_levels


def arc_posteriors(lat: Lattice, acoustic_scale: float) -> np.ndarray:
    """float64 ``[num_arcs]`` posteriors (0 for arcs on no complete path)."""
    na, ns = lat.num_arcs, lat.num_states
    if na == 0:
        return np.zeros(0)
    score = -(lat.graph.astype(np.float64) + acoustic_scale * lat.acoustic.astype(np.float64))
    fg, fa = lat.final_graph.astype(np.float64), lat.final_acoustic.astype(np.float64)
    final = np.where(np.isfinite(fg) & np.isfinite(fa), -(fg + acoustic_scale * fa), -np.inf)
    level = topological_levels(lat)
    alpha = np.full(ns, -np.inf)
    alpha[lat.start] = 0.0
    # forward: arcs grouped by the level of their destination, ascending
    _relax(alpha, lat.src, lat.dst, score, level[lat.dst], reverse=False)
    beta = final.copy()
    # backward: arcs grouped by the level of their source, descending (beta[s] also keeps s's final score)
    _relax(beta, lat.dst, lat.src, score, level[lat.src], reverse=True)
    total = beta[lat.start]
    if not np.isfinite(total):
        return np.zeros(na)
    with np.errstate(invalid="ignore"):
        post = np.exp(alpha[lat.src] + score + beta[lat.dst] - total)
    return np.nan_to_num(post, nan=0.0)


def _relax(dist: np.ndarray, frm: np.ndarray, to: np.ndarray, score: np.ndarray, key: np.ndarray,
           reverse: bool) -> None:
    """For each group of arcs with equal ``key`` (in order), ``dist[to] = logaddexp(dist[to],
    logsumexp(dist[frm] + score))``; every ``frm`` of a group is complete before it."""
    order = np.lexsort((to, -key if reverse else key))
    k = key[order]
    bounds = np.flatnonzero(np.r_[True, k[1:] != k[:-1], True])
    for i in range(len(bounds) - 1):
        arcs = order[bounds[i]:bounds[i + 1]]
        t = to[arcs]
        seg = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
        cand = dist[frm[arcs]] + score[arcs]
        with np.errstate(invalid="ignore"):
            m = np.maximum.reduceat(cand, seg)
            safe = np.where(np.isfinite(m), m, 0.0)
            owner = np.repeat(np.arange(len(seg)), np.diff(np.r_[seg, len(arcs)]))
            s = np.log(np.add.reduceat(np.exp(cand - safe[owner]), seg)) + safe
        s = np.where(np.isfinite(m), s, -np.inf)
        dist[t[seg]] = np.logaddexp(dist[t[seg]], s)
