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
order, so each (state, history) pair is expanded once; the LM look-ups one topological
level needs go to the LMs as one vectorised batch (``NgramLM.logprob_batch`` and the
trie's batched row search), and are memoised per (history pair, word). The output is not re-determinized (Kaldi determinizes it; the best path
and all path scores are the same either way).
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np

from asr.lattice.lattice_io import Lattice, topological_levels
from asr.errors import DecodeError, FormatError, LMError
from asr.lang.lang_dir import read_symbol_table

log = logging.getLogger(__name__)

LN10 = math.log(10.0)


def read_words(path: str | os.PathLike) -> list[str]:
    """Read a symbol table (``word id`` per line) into a list indexed by id ("" = unused)."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such symbol table")
    table = read_symbol_table(path)
    if any(i < 0 for i in table.values()):
        raise FormatError(f"{path}: negative symbol id")
    words = [""] * (1 + max(table.values(), default=-1))
    for w, i in table.items():
        words[i] = w
    return words


class LatticeRescorer:
    """Replace the first-pass LM score in word lattices by a new LM's score.

    ``old_lm``/``new_lm``: ``asr.lm.ngram_lm.NgramLM``; ``words``: the lattice's word table (id -> word). ``old_lm=None`` only adds the new LM
    (Kaldi's lattice-lmrescore-const-arpa alone).
    """

    def __init__(self, old_lm, new_lm, words: list[str], lm_scale: float = 1.0):
        self.old = old_lm
        self.new = new_lm
        self.words = words
        self.lm_scale = float(lm_scale)
        self._old_ids = self._map_words(old_lm) if old_lm is not None else None
        self._new_ids = self._map_words(new_lm)
        # lattice words the new LM lacks (scored as its <unk>): counted per lattice arc
        self.new_missing = np.array([i > 0 and _is_word(w) and w not in new_lm.vocab for i, w in enumerate(words)],
                                    dtype=bool)
        # joint LM state (old history, new history) <-> small int; caches keyed by ints
        self._joint: dict[tuple, int] = {}
        self._joint_list: list[tuple] = []
        self._arc_cache: dict[int, tuple[int, float]] = {}
        self._final_cache: dict[int, float] = {}
        self._nw = max(len(words), 1)

    def _map_words(self, lm) -> np.ndarray:
        ids = np.full(len(self.words), -1, np.int64)
        for i, w in enumerate(self.words):
            if i == 0 or not _is_word(w):
                continue
            try:
                ids[i] = lm.word_id(w)
            except LMError:  # not in the LM and no <unk>: an error only if a lattice uses it
                ids[i] = -1
        return ids

    def _jid(self, ho, hn) -> int:
        key = (ho, hn)
        j = self._joint.get(key)
        if j is None:
            j = self._joint[key] = len(self._joint_list)
            self._joint_list.append(key)
        return j

    def _resolve(self, pairs: list[tuple[int, int]], utt: str) -> None:
        """Fill the arc cache for (joint state, word) pairs: one vectorised LM query per LM."""
        J = np.fromiter((j for j, _ in pairs), np.int64, len(pairs))
        W = np.fromiter((w for _, w in pairs), np.int64, len(pairs))
        joint = self._joint_list
        lp_new, hn2 = _score_batch(self.new, [joint[j][1] for j in J.tolist()], self._lm_ids(self._new_ids, W, utt))
        delta = -self.lm_scale * LN10 * lp_new
        if self.old is not None:
            lp_old, ho2 = _score_batch(self.old, [joint[j][0] for j in J.tolist()], self._lm_ids(self._old_ids, W, utt))
            delta += LN10 * lp_old
        else:
            ho2 = [()] * len(pairs)
        if len(self._arc_cache) > 4_000_000:
            self._arc_cache.clear()
        nw = self._nw
        for j, w, o, n, d in zip(J.tolist(), W.tolist(), ho2, hn2, delta.tolist()):
            self._arc_cache[j * nw + w] = (self._jid(o, n), d)

    def _lm_ids(self, table: np.ndarray, words: np.ndarray, utt: str) -> np.ndarray:
        bad = (words >= len(table)) | (table[np.minimum(words, len(table) - 1)] < 0)
        if bad.any():
            w = int(words[np.flatnonzero(bad)[0]])
            name = self.words[w] if w < len(self.words) else f"#{w}"
            raise DecodeError(f"utterance {utt!r}: lattice word {name!r} (id {w}) is not in the LM "
                              "and the LM has no <unk>")
        return table[words]

    def _final(self, jid: int) -> float:
        hit = self._final_cache.get(jid)
        if hit is None:
            ho, hn = self._joint_list[jid]
            hit = -self.lm_scale * LN10 * self.new.logprob_ids(self.new.eos, hn)
            if self.old is not None:
                hit += LN10 * self.old.logprob_ids(self.old.eos, ho)
            self._final_cache[jid] = hit
        return hit

    def rescore(self, lat: Lattice, utt: str = "") -> Lattice:
        """The rescored lattice (states expanded by LM history as needed)."""
        if lat.num_states == 0:
            return Lattice.empty()
        level = topological_levels(lat)
        order = np.argsort(lat.src, kind="stable")
        indptr = np.zeros(lat.num_states + 1, np.int64)
        np.cumsum(np.bincount(lat.src, minlength=lat.num_states), out=indptr[1:])
        dst_l, word_l, graph_l = lat.dst.tolist(), lat.word.tolist(), lat.graph.tolist()
        out_arcs = [order[a:b].tolist() for a, b in zip(indptr[:-1].tolist(), indptr[1:].tolist())]
        is_final = lat.is_final().tolist()
        final_graph = lat.final_graph.tolist()

        ho0 = self.old.start_state() if self.old is not None else ()
        j0 = self._jid(ho0, self.new.start_state())
        shift = 1 << 32  # product-state key: lattice state * shift + joint LM state
        nw = self._nw
        cache = self._arc_cache
        ids: dict[int, int] = {lat.start * shift + j0: 0}
        pending: dict[int, list[tuple[int, int]]] = {lat.start: [(j0, 0)]}
        o_src: list[int] = []
        o_dst: list[int] = []
        o_word: list[int] = []
        o_graph: list[float] = []
        o_arc: list[int] = []
        f_state: list[int] = []
        f_graph: list[float] = []
        f_arcstate: list[int] = []
        by_level = np.argsort(level, kind="stable")
        bounds = np.flatnonzero(np.diff(level[by_level])) + 1
        for group in np.split(by_level, bounds):
            # One topological level of lattice states: every (state, history) pair that
            # reaches them is known now; their LM look-ups go in one vectorised batch.
            work = [(s, pending.pop(s)) for s in group.tolist() if s in pending]
            miss = {
                (jid, w)
                for s, todo in work
                for w in {word_l[i] for i in out_arcs[s]} - {0}
                for jid, _ in todo
                if jid * nw + w not in cache
            }
            if miss:
                self._resolve(list(miss), utt)
            for s, todo in work:
                arcs = out_arcs[s]
                for jid, pid in todo:
                    for i in arcs:
                        w = word_l[i]
                        if w == 0:
                            j2, delta = jid, 0.0
                        else:
                            hit = cache.get(jid * nw + w)
                            if hit is None:  # the cache was cleared while being filled
                                self._resolve([(jid, w)], utt)
                                hit = cache[jid * nw + w]
                            j2, delta = hit
                        d = dst_l[i]
                        key = d * shift + j2
                        pid2 = ids.get(key)
                        if pid2 is None:
                            pid2 = ids[key] = len(ids)
                            pending.setdefault(d, []).append((j2, pid2))
                        o_src.append(pid)
                        o_dst.append(pid2)
                        o_word.append(w)
                        o_graph.append(graph_l[i] + delta)
                        o_arc.append(i)
                    if is_final[s]:
                        f_state.append(pid)
                        f_graph.append(final_graph[s] + self._final(jid))
                        f_arcstate.append(s)
        n = len(ids)
        fg = np.full(n, np.inf, np.float32)
        fa = np.full(n, np.inf, np.float32)
        if f_state:
            fg[f_state] = f_graph
            fa[f_state] = lat.final_acoustic[f_arcstate]
        acoustic = lat.acoustic[np.asarray(o_arc, np.int64)] if o_arc else np.zeros(0, np.float32)
        return Lattice(o_src, o_dst, o_word, o_graph, acoustic, fg, fa, start=0)


def _is_word(w: str) -> bool:
    """A word table entry that is a word (not empty, <eps>, <s>, </s> or a #N symbol)."""
    return bool(w) and not w.startswith("#") and w not in ("<eps>", "<s>", "</s>")


def _score_batch(lm, states: list[tuple[int, ...]], words: np.ndarray) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Vectorised ``lm.score_ids`` over many (state, word) pairs: log10 probabilities and
    the reduced states after each word (longest suffix of state + word that is an n-gram
    of the model, as ``NgramLM.context_state``)."""
    n = len(states)
    H = lm.order - 1
    if H == 0:
        return lm.logprob_batch(words, np.zeros((n, 0), np.int64)), [()] * n
    hist = np.full((n, H), -1, np.int64)
    for i, st in enumerate(states):
        if st:
            hist[i, H - len(st):] = st
    lp = lm.logprob_batch(words, hist)
    ext = np.concatenate([hist, words[:, None]], axis=1)[:, 1:]
    length = np.zeros(n, np.int64)
    for L in range(H, 0, -1):
        todo = np.flatnonzero(length == 0)
        if len(todo) == 0:
            break
        rows = lm._rows_batch(ext[todo, H - L:])
        length[todo[rows >= 0]] = L
    ext_l = ext.tolist()
    return lp, [tuple(e[H - L:]) if L else () for e, L in zip(ext_l, length.tolist())]


# ----------------------------------------------------------------------------- decode dirs

MAX_MISSING = 0.5  # more of the lattices' word arcs missing from the new LM: another vocabulary


def check_vocabulary(lm_path, words: list[str], word_arcs: int, missing: "Counter[int]") -> None:
    """Warn about lattice words the new LM lacks (scored as its <unk>); a DecodeError when
    they are more than ``MAX_MISSING`` of the lattices' word arcs (the LM is for another
    vocabulary)."""
    n = sum(missing.values())
    if not n:
        return
    examples = " ".join(words[w] for w, _ in missing.most_common(5))
    msg = (f"{lm_path}: {n} of {word_arcs} lattice word arcs ({len(missing)} distinct words) are not in the LM's "
           f"vocabulary and are scored as its <unk>, e.g. {examples}")
    if n > MAX_MISSING * word_arcs:
        raise DecodeError(msg + " (more than half: an LM for another vocabulary?); nothing written")
    log.warning("%s", msg)


_WORKER_RESCORER: LatticeRescorer | None = None


def rescore_file(rescorer: LatticeRescorer, in_path: Path, out_path: Path, progress: bool = True) -> tuple:
    """Rescore one lattice archive; returns (lattices, arcs in, arcs out, word arcs in,
    {word id: arcs} of the words the new LM lacks)."""

    from tqdm import tqdm

    from asr.lattice.lattice_io import read_lattices, write_lattices

    stats = [0, 0, 0, 0, Counter()]
    missing = rescorer.new_missing

    def gen():
        for utt, lat in tqdm(read_lattices(in_path), desc=in_path.name, unit="utt", leave=False,
                             disable=None if progress else True):
            out = rescorer.rescore(lat, utt)
            stats[0] += 1
            stats[1] += lat.num_arcs
            stats[2] += out.num_arcs
            w = lat.word[lat.word > 0]
            stats[3] += len(w)
            w = w[w < len(missing)]
            stats[4].update(w[missing[w]].tolist())
            yield utt, out

    write_lattices(out_path, gen())
    return tuple(stats)


def _worker(job: tuple[Path, Path]) -> tuple:
    assert _WORKER_RESCORER is not None
    return rescore_file(_WORKER_RESCORER, job[0], job[1], progress=False)


def rescore_decode_dir(in_dir, out_dir, old_lm_path, new_lm_path, lm_scale: float = 1.0,
                       words_path=None, nj: int = 1, force: bool = False) -> dict:
    """``asr lmrescore``: rescore IN/lat.<job>.gz into the decode dir OUT (same jobs, written at
    once), with the word table (checked against the one IN's lattices were made with) and
    OUT/decode.json (IN's, plus a ``rescoring`` entry and OUT's ``inputs``). ``nj`` > 1 runs
    lattice files in parallel processes (forked after the LMs are loaded, so they share
    them). When OUT was made from the same IN, LMs and scale, nothing is done unless
    ``force``. Returns the ``rescoring`` entry."""
    import json
    import shutil
    import time

    from asr.io.atomic import atomic_dir, atomic_write_text
    from asr.io.fingerprint import arpa_text_hash, file_hash
    from asr.lattice import decode_dir as dd
    from asr.lattice.lattice_scoring import find_words_table, lattice_files
    from asr.lm.arpa import read_arpa

    global _WORKER_RESCORER
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if out_dir.exists() and in_dir.resolve() == out_dir.resolve():
        raise DecodeError("OUT_DECODE_DIR must differ from IN_DECODE_DIR")
    source = dd.DecodeDir.load_lattices(in_dir)
    files = lattice_files(in_dir)
    words_path = find_words_table(in_dir, words_path)
    source.check_words(words_path)
    for lm in (old_lm_path, new_lm_path):
        if not Path(lm).is_file():
            raise DecodeError(f"{lm}: no such LM")
    in_id = in_dir / dd.INFO if (in_dir / dd.INFO).is_file() else files[0]
    inputs = {"source": [str(p) for p in files], "decode.json": file_hash(in_id), "old_lm": file_hash(old_lm_path),
              "new_lm": file_hash(new_lm_path), "options": {"lm_scale": lm_scale}}
    source.check_lm(old_lm_path, arpa_text_hash(old_lm_path))
    if not force and dd.up_to_date(out_dir, inputs):
        log.info("%s is up to date (same lattices, LMs and scale); skipping", out_dir)
        return dict(dd.DecodeDir.load(out_dir).info["rescoring"], skipped=True)
    words = read_words(words_path)
    t0 = time.perf_counter()
    old, new = read_arpa(old_lm_path), read_arpa(new_lm_path)
    t_load = time.perf_counter() - t0
    rescorer = LatticeRescorer(old, new, words, lm_scale=lm_scale)
    with atomic_dir(out_dir, replaces=(dd.INFO, dd.HYP)) as tmp:
        jobs = [(p, tmp / p.name) for p in files]
        t0 = time.perf_counter()
        if nj > 1 and len(jobs) > 1:
            import multiprocessing

            _WORKER_RESCORER = rescorer
            try:
                with multiprocessing.get_context("fork").Pool(min(nj, len(jobs))) as pool:
                    results = pool.map(_worker, jobs, chunksize=1)
            finally:
                _WORKER_RESCORER = None
        else:
            results = [rescore_file(rescorer, a, b) for a, b in jobs]
        seconds = time.perf_counter() - t0
        n_utt, arcs_in, arcs_out, word_arcs = (sum(r[k] for r in results) for k in range(4))
        check_vocabulary(new_lm_path, words, word_arcs, sum((r[4] for r in results), Counter()))
        shutil.copyfile(words_path, tmp / "words.txt")
        info = {k: v for k, v in source.info.items() if k not in ("inputs", "wer", dd.LM_KEY)}
        if lm_scale == 1.0:  # the lattices' graph costs now hold the new LM's scores
            info[dd.LM_KEY] = arpa_text_hash(new_lm_path)
        entry = {
            "old_lm": str(old_lm_path), "new_lm": str(new_lm_path), "lm_scale": lm_scale,
            "input": str(in_dir), "jobs": len(jobs), "nj": nj, "utterances": n_utt,
            "arcs_in": arcs_in, "arcs_out": arcs_out,
            "lm_load_seconds": round(t_load, 3), "rescore_seconds": round(seconds, 3),
        }
        info.update(rescoring=entry, lattice_jobs=len(jobs), words_sha256=file_hash(words_path), inputs=inputs)
        atomic_write_text(tmp / dd.INFO, json.dumps(info, indent=2) + "\n")
    log.info("rescored %d lattices (%d -> %d arcs) in %.2f s (+%.2f s loading LMs)",
             n_utt, arcs_in, arcs_out, seconds, t_load)
    return entry
