"""Lattice rescoring with a bigger n-gram LM (Kaldi ``lmrescore_const_arpa.sh`` semantics).

Kaldi runs ``lattice-lmrescore --lm-scale=-1`` with the first-pass LM (removing its score)
and then ``lattice-lmrescore-const-arpa --lm-scale=S`` with the full LM. Both compose the
lattice with a *deterministic on-demand* LM whose states are n-gram histories and whose
scores use exact back-off (never G.fst's epsilon back-off arcs, which would let a path
take a cheaper back-off route than the model assigns).

Here both steps are one composition. A state of the output lattice is
``(lattice state, old-LM history, new-LM history)``, each history reduced to its longest
suffix that exists as a context in that LM (``NgramLM.context_state``), so paths whose
histories the LMs cannot tell apart share a state. Every word arc gets

    graph' = graph - old_cost(word | old history) + S * new_cost(word | new history)

and every final state ``- old_cost(</s> | h) + S * new_cost(</s> | h)`` on its final
weight, where ``cost = -ln(10) * log10 p``. Epsilon arcs (word 0) keep their histories
and weights; acoustic costs are untouched. Lattice states are visited in topological
order, so each (state, history) pair is expanded once; LM look-ups are memoised per
(history, word). The output is not re-determinized (Kaldi determinizes it; the best path
and all path scores are the same either way).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np

from asr.decode.lattice_io import Lattice, topological_levels
from asr.errors import DecodeError, FormatError
from asr.io.tables import iter_table

log = logging.getLogger(__name__)

LN10 = math.log(10.0)


def read_words(path: str | os.PathLike) -> list[str]:
    """Read a symbol table (``word id`` per line) into a list indexed by id ("" = unused)."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such symbol table")
    pairs = []
    for e in iter_table(path, allow_empty_value=False):
        try:
            pairs.append((e.key, int(e.value)))
        except ValueError:
            raise FormatError(f"{path}:{e.line}: expected `symbol integer-id`, got {e.key} {e.value}") from None
    size = 1 + max((i for _, i in pairs), default=-1)
    table = [""] * size
    for w, i in pairs:
        if i < 0:
            raise FormatError(f"{path}: negative id for {w!r}")
        table[i] = w
    return table


class LatticeRescorer:
    """Replace the first-pass LM score in word lattices by a new LM's score.

    ``old_lm``/``new_lm``: ``asr.lm.ngram_lm.NgramLM`` (or anything with ``start_state()``,
    ``score_ids(state, word_id) -> (log10 p, state)``, ``logprob_ids``, ``word_id``, ``eos``);
    ``words``: the lattice's word table (id -> word). ``old_lm=None`` only adds the new LM
    (Kaldi's lattice-lmrescore-const-arpa alone).
    """

    def __init__(self, old_lm, new_lm, words: list[str], lm_scale: float = 1.0):
        self.old = old_lm
        self.new = new_lm
        self.words = words
        self.lm_scale = float(lm_scale)
        self._old_ids = self._map_words(old_lm) if old_lm is not None else None
        self._new_ids = self._map_words(new_lm)
        self._arc_cache: dict[tuple, tuple] = {}
        self._final_cache: dict[tuple, float] = {}

    def _map_words(self, lm) -> np.ndarray:
        ids = np.full(len(self.words), -1, np.int64)
        for i, w in enumerate(self.words):
            if i == 0 or not w or w.startswith("#") or w in ("<eps>", "<s>", "</s>"):
                continue
            try:
                ids[i] = lm.word_id(w)
            except Exception:  # not in the LM and no <unk>: an error only if a lattice uses it
                ids[i] = -1
        return ids

    def _lm_id(self, table: np.ndarray, word: int, utt: str) -> int:
        if word >= len(table) or table[word] < 0:
            name = self.words[word] if word < len(self.words) else f"#{word}"
            raise DecodeError(f"utterance {utt!r}: lattice word {name!r} (id {word}) is not in the LM "
                              "and the LM has no <unk>")
        return int(table[word])

    def _arc(self, ho, hn, word: int, utt: str):
        key = (ho, hn, word)
        hit = self._arc_cache.get(key)
        if hit is None:
            lp_new, hn2 = self.new.score_ids(hn, self._lm_id(self._new_ids, word, utt))
            delta = -self.lm_scale * LN10 * lp_new
            ho2 = ho
            if self.old is not None:
                lp_old, ho2 = self.old.score_ids(ho, self._lm_id(self._old_ids, word, utt))
                delta += LN10 * lp_old
            hit = (ho2, hn2, delta)
            if len(self._arc_cache) > 2_000_000:
                self._arc_cache.clear()
            self._arc_cache[key] = hit
        return hit

    def _final(self, ho, hn) -> float:
        key = (ho, hn)
        hit = self._final_cache.get(key)
        if hit is None:
            hit = -self.lm_scale * LN10 * self.new.logprob_ids(self.new.eos, hn)
            if self.old is not None:
                hit += LN10 * self.old.logprob_ids(self.old.eos, ho)
            self._final_cache[key] = hit
        return hit

    def rescore(self, lat: Lattice, utt: str = "") -> Lattice:
        """The rescored lattice (states expanded by LM history as needed)."""
        if lat.num_states == 0:
            return Lattice.empty()
        level = topological_levels(lat)
        order = np.argsort(lat.src, kind="stable")
        indptr = np.zeros(lat.num_states + 1, np.int64)
        np.cumsum(np.bincount(lat.src, minlength=lat.num_states), out=indptr[1:])
        src_l, dst_l, word_l = lat.src.tolist(), lat.dst.tolist(), lat.word.tolist()
        graph_l = lat.graph.tolist()
        order_l = order.tolist()
        is_final = lat.is_final()

        ho0 = self.old.start_state() if self.old is not None else ()
        hn0 = self.new.start_state()
        ids: dict[tuple, int] = {(lat.start, ho0, hn0): 0}
        pending: dict[int, list[tuple]] = {lat.start: [(ho0, hn0, 0)]}
        o_src, o_dst, o_word, o_graph, o_arc = [], [], [], [], []
        f_state, f_graph, f_arcstate = [], [], []
        for s in np.argsort(level, kind="stable").tolist():
            todo = pending.pop(s, None)
            if not todo:
                continue
            arcs = order_l[indptr[s]:indptr[s + 1]]
            for ho, hn, pid in todo:
                for i in arcs:
                    w = word_l[i]
                    d = dst_l[i]
                    if w == 0:
                        ho2, hn2, delta = ho, hn, 0.0
                    else:
                        ho2, hn2, delta = self._arc(ho, hn, w, utt)
                    key = (d, ho2, hn2)
                    pid2 = ids.get(key)
                    if pid2 is None:
                        pid2 = ids[key] = len(ids)
                        pending.setdefault(d, []).append((ho2, hn2, pid2))
                    o_src.append(pid)
                    o_dst.append(pid2)
                    o_word.append(w)
                    o_graph.append(graph_l[i] + delta)
                    o_arc.append(i)
                if is_final[s]:
                    f_state.append(pid)
                    f_graph.append(float(lat.final_graph[s]) + self._final(ho, hn))
                    f_arcstate.append(s)
        n = len(ids)
        fg = np.full(n, np.inf, np.float32)
        fa = np.full(n, np.inf, np.float32)
        if f_state:
            fg[f_state] = f_graph
            fa[f_state] = lat.final_acoustic[f_arcstate]
        o_arc_a = np.asarray(o_arc, np.int64)
        return Lattice(o_src, o_dst, o_word, o_graph, lat.acoustic[o_arc_a] if len(o_arc) else [], fg, fa, start=0)
