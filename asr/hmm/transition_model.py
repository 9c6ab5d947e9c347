"""Kaldi's transition model (``hmm/transition-model.cc``) as numpy arrays.

Transition states are the sorted tuples (phone, hmm_state, forward_pdf, self_loop_pdf)
that the tree and topology allow, numbered from 1. Each transition state owns one
transition-id per transition of its HMM state (in the topology's order), numbered
consecutively from 1. A transition-id is a self-loop when its destination is its own HMM
state; its pdf is the self-loop pdf then, the forward pdf otherwise.

Arrays (index 0 unused, transition-ids 1..num_transition_ids):
``tid2pdf`` (-1 at 0), ``tid2phone``, ``tid2hmm_state``, ``tid2tstate``, ``tid2index``,
``tid2dest`` (destination HMM state), ``is_self_loop``, ``is_final`` (goes to the final
state), ``log_probs``.

``read``/``write`` handle the TransitionModel part of a Kaldi ``final.mdl`` (binary
with ``\\0B`` or text); whatever follows it (GMMs, nnet) is skipped on reading.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from asr.errors import FormatError, ModelError
from asr.hmm.kaldi_objects import KaldiReader, KaldiWriter
from asr.hmm.topology import Topology


class TransitionModel:
    def __init__(self, topo: Topology, tuples: np.ndarray, log_probs: np.ndarray | None = None):
        """``tuples`` int [num_tstates, 4] sorted; ``log_probs`` float [num_tids + 1] or None
        to initialise from the topology's probabilities (Kaldi ``InitializeProbs``)."""
        self.topo = topo
        self.tuples = np.asarray(tuples, dtype=np.int32).reshape(-1, 4)
        if len(self.tuples) == 0:
            raise ModelError("transition model: no transition states")
        self._compute_derived()
        if log_probs is None:
            self.log_probs = self._initial_log_probs()
        else:
            log_probs = np.asarray(log_probs, dtype=np.float32)
            if len(log_probs) != self.num_transition_ids + 1:
                raise ModelError(
                    f"transition model: {len(log_probs)} log-probs for {self.num_transition_ids} transition-ids (+1)")
            self.log_probs = log_probs
        self._compute_non_self_loop()

    # -- construction --------------------------------------------------------
    @classmethod
    def build(cls, tree, topo: Topology) -> "TransitionModel":
        """Kaldi ``TransitionModel(ctx_dep, topo)`` (``ComputeTuplesIsHmm`` / ``NotHmm``)."""
        phones = topo.phones
        npc = {p: topo.num_pdf_classes(p) for p in phones}
        tuples = []
        if topo.is_hmm():
            info = tree.get_pdf_info(phones, npc)
            to_states: dict[tuple[int, int], list[int]] = {}
            for p in phones:
                for j, st in enumerate(topo.topology_for_phone(p)):
                    if st.forward_pdf_class >= 0:
                        to_states.setdefault((p, st.forward_pdf_class), []).append(j)
            for pdf, pairs in enumerate(info):
                for phone, pc in pairs:
                    for hs in to_states[(phone, pc)]:
                        tuples.append((phone, hs, pdf, pdf))
        else:
            # Separate forward / self-loop pdf classes: enumerate pdf pairs per state.
            from asr.hmm.tree import PDF_CLASS, multi_map

            for p in phones:
                for j, st in enumerate(topo.topology_for_phone(p)):
                    if st.forward_pdf_class < 0:
                        continue
                    fw: set[int] = set()
                    sl: set[int] = set()
                    multi_map(tree.to_pdf, {tree.central_position: p, PDF_CLASS: st.forward_pdf_class}, fw)
                    multi_map(tree.to_pdf, {tree.central_position: p, PDF_CLASS: st.self_loop_pdf_class}, sl)
                    # (Kaldi enumerates pairs jointly over contexts; the product is a superset.)
                    for a in sorted(fw):
                        for b in sorted(sl):
                            tuples.append((p, j, a, b))
        tuples = sorted(set(tuples))
        return cls(topo, np.array(tuples, dtype=np.int32))

    def _compute_derived(self) -> None:
        t = self.tuples
        n_ts = len(t)
        counts = np.empty(n_ts, dtype=np.int64)
        phones = t[:, 0].tolist()
        states = t[:, 1].tolist()
        dest_lists = []
        prob_lists = []
        for i in range(n_ts):
            try:
                entry = self.topo.topology_for_phone(phones[i])
            except FormatError as e:
                raise ModelError(f"transition model: {e}") from None
            if not 0 <= states[i] < len(entry) - 1:
                raise ModelError(f"transition model: tuple {i + 1}: phone {phones[i]} has no HMM state {states[i]}")
            trans = entry[states[i]].transitions
            counts[i] = len(trans)
            dest_lists.extend(d for d, _ in trans)
            prob_lists.extend(p for _, p in trans)
        # state2id[tstate] = first tid of tstate (1-based tstates; entry n_ts+1 = one past end)
        self.state2id = np.zeros(n_ts + 2, dtype=np.int32)
        self.state2id[1:] = 1 + np.concatenate([[0], np.cumsum(counts)])
        n_tids = int(counts.sum())
        self.num_transition_ids = n_tids
        self.num_transition_states = n_ts
        tstate = np.repeat(np.arange(1, n_ts + 1, dtype=np.int32), counts)
        self.tid2tstate = np.concatenate([[0], tstate]).astype(np.int32)
        self.tid2index = np.zeros(n_tids + 1, dtype=np.int32)
        self.tid2index[1:] = np.arange(1, n_tids + 1) - self.state2id[tstate]
        self.tid2dest = np.concatenate([[-1], dest_lists]).astype(np.int32)
        self._topo_probs = np.concatenate([[1.0], prob_lists]).astype(np.float64)
        self.tid2phone = np.concatenate([[0], t[tstate - 1, 0]]).astype(np.int32)
        self.tid2hmm_state = np.concatenate([[-1], t[tstate - 1, 1]]).astype(np.int32)
        self.is_self_loop = np.zeros(n_tids + 1, dtype=bool)
        self.is_self_loop[1:] = self.tid2dest[1:] == self.tid2hmm_state[1:]
        self.tid2pdf = np.full(n_tids + 1, -1, dtype=np.int32)
        self.tid2pdf[1:] = np.where(self.is_self_loop[1:], t[tstate - 1, 3], t[tstate - 1, 2])
        num_states = np.array([len(self.topo.topology_for_phone(p)) for p in phones], dtype=np.int32)
        self.is_final = np.zeros(n_tids + 1, dtype=bool)
        self.is_final[1:] = self.tid2dest[1:] + 1 == num_states[tstate - 1]
        self.num_pdfs = int(max(t[:, 2].max(), t[:, 3].max())) + 1
        self._tuple_index = {tuple(row): i + 1 for i, row in enumerate(t.tolist())}

    def _initial_log_probs(self) -> np.ndarray:
        probs = self._topo_probs[1:]
        if np.any(probs <= 0):
            raise ModelError("transition model: zero transition probability in the topology")
        out = np.zeros(self.num_transition_ids + 1, dtype=np.float32)
        out[1:] = np.log(probs.astype(np.float32))  # Kaldi: Log(BaseFloat) in float
        return out

    def _compute_non_self_loop(self) -> None:
        self.non_self_loop_log_probs = np.zeros(self.num_transition_states + 1, dtype=np.float32)
        sl = np.nonzero(self.is_self_loop)[0]
        p = 1.0 - np.exp(self.log_probs[sl].astype(np.float64))
        p = np.maximum(p, 1e-10)
        self.non_self_loop_log_probs[self.tid2tstate[sl]] = np.log(p)

    # -- Kaldi's lookups -----------------------------------------------------
    @property
    def num_phones(self) -> int:
        return int(self.tuples[:, 0].max())

    def tuple_to_tstate(self, phone: int, hmm_state: int, forward_pdf: int, self_loop_pdf: int) -> int:
        try:
            return self._tuple_index[(phone, hmm_state, forward_pdf, self_loop_pdf)]
        except KeyError:
            raise ModelError(
                f"transition model: tuple (phone {phone}, state {hmm_state}, pdf {forward_pdf}/{self_loop_pdf})"
                " not found (incompatible tree and model?)") from None

    def pair_to_tid(self, tstate: int, trans_index: int) -> int:
        if not 0 <= trans_index < self.state2id[tstate + 1] - self.state2id[tstate]:
            raise ModelError(f"transition model: transition state {tstate} has no transition index {trans_index}")
        return int(self.state2id[tstate] + trans_index)

    pairs_to_tid = pair_to_tid

    def self_loop_of(self, tstate: int) -> int:
        """The self-loop transition-id of a transition state, or 0 if it has none."""
        lo, hi = self.state2id[tstate], self.state2id[tstate + 1]
        idx = np.nonzero(self.is_self_loop[lo:hi])[0]
        return int(lo + idx[0]) if len(idx) else 0

    def tid_of(self, tstate: int, dest_state: int) -> int:
        """The transition-id of ``tstate`` that goes to HMM state ``dest_state``."""
        lo, hi = self.state2id[tstate], self.state2id[tstate + 1]
        idx = np.nonzero(self.tid2dest[lo:hi] == dest_state)[0]
        if not len(idx):
            raise ModelError(f"transition model: transition state {tstate} has no transition to state {dest_state}")
        return int(lo + idx[0])

    def transition_log_prob_ignoring_self_loops(self, tid: int) -> float:
        return float(self.log_probs[tid] - self.non_self_loop_log_probs[self.tid2tstate[tid]])

    def accumulate(self, alignments) -> np.ndarray:
        """Counts per transition-id (index 0 unused) over an iterable of tid arrays."""
        counts = np.zeros(self.num_transition_ids + 1, dtype=np.float64)
        for ali in alignments:
            counts += np.bincount(np.asarray(ali, dtype=np.int64), minlength=len(counts))[: len(counts)]
        return counts

    def mle_update(self, counts: np.ndarray, floor: float = 0.01, mincount: float = 5.0) -> dict:
        """Kaldi ``TransitionModel::MleUpdate``: per transition state with more than one
        transition and at least ``mincount`` counts, probabilities = normalised counts, floored
        at ``floor`` (normalise and floor three times). Returns counts and the objective gain."""
        counts = np.asarray(counts, dtype=np.float64)
        if len(counts) != self.num_transition_ids + 1:
            raise ModelError(f"transition counts of length {len(counts)}, expected {self.num_transition_ids + 1}")
        new = self.log_probs.astype(np.float64).copy()
        gain = tot_count = 0.0
        skipped = updated = 0
        for ts in range(1, self.num_transition_states + 1):
            lo, hi = int(self.state2id[ts]), int(self.state2id[ts + 1])
            if hi - lo < 2:
                continue
            c = counts[lo:hi]
            tot = c.sum()
            tot_count += tot
            if tot < mincount:
                skipped += 1
                continue
            p = c / tot
            for _ in range(3):
                p = np.maximum(p / p.sum(), floor)
            old = self.log_probs[lo:hi].astype(np.float64)
            gain += float((c * (np.log(p) - old)).sum())
            new[lo:hi] = np.log(p)
            updated += 1
        self.log_probs = new.astype(np.float32)
        self.log_probs[0] = 0.0
        self._compute_non_self_loop()
        return {"transition_states_updated": updated, "transition_states_skipped": skipped,
                "transition_count": tot_count, "transition_objf_gain": gain}

    # -- I/O -----------------------------------------------------------------
    @classmethod
    def read(cls, path: str | os.PathLike) -> "TransitionModel":
        """Read the TransitionModel at the start of a Kaldi model file (binary or text)."""
        try:
            r = KaldiReader.open(path)
        except OSError as e:
            raise ModelError(f"cannot read transition model {path}: {e}") from None
        try:
            return cls.read_from(r)
        except ModelError as e:
            raise ModelError(f"{path}: {e}") from None

    @classmethod
    def read_from(cls, r: KaldiReader) -> "TransitionModel":
        r.expect("<TransitionModel>")
        topo = Topology.read_from(r)
        tok = r.token()
        if tok not in ("<Triples>", "<Tuples>"):
            raise r._fail(f"expected <Triples> or <Tuples>, got {tok!r}")
        n = r.int32()
        if n < 0:
            raise r._fail(f"negative tuple count {n}")
        width = 4 if tok == "<Tuples>" else 3
        if r.binary:
            rec = np.dtype([(f"s{i}", "i1") if k == 0 else (f"v{i}", "<i4") for i in range(width) for k in (0, 1)])
            end = r.pos + rec.itemsize * n
            if end > len(r.data):
                raise r._fail("truncated tuples")
            arr = np.frombuffer(r.data, rec, n, r.pos)
            if n and not all(np.all(arr[f"s{i}"] == 4) for i in range(width)):
                raise r._fail("bad size byte in tuples")
            vals = np.stack([arr[f"v{i}"] for i in range(width)], axis=1) if n else np.zeros((0, width), np.int32)
            r.pos = end
        else:
            vals = np.array([r.int32() for _ in range(n * width)], dtype=np.int32).reshape(n, width)
        if width == 3:
            vals = np.concatenate([vals, vals[:, 2:3]], axis=1)
        tok = r.token()
        if tok not in ("</Triples>", "</Tuples>"):
            raise r._fail(f"expected </Triples> or </Tuples>, got {tok!r}")
        r.expect("<LogProbs>")
        log_probs = r.float_vector()
        r.expect("</LogProbs>")
        r.expect("</TransitionModel>")
        tm = cls(topo, vals, log_probs)
        tm.check()
        return tm

    def check(self) -> None:
        order = np.lexsort(self.tuples.T[::-1])
        if not np.array_equal(order, np.arange(len(self.tuples))) or len(self._tuple_index) != len(self.tuples):
            raise ModelError("transition model: tuples are not sorted and unique")
        lp = self.log_probs[1:]
        if not np.all(np.isfinite(lp)) or np.any(lp > 0):
            raise ModelError("transition model: log-probs must be finite and <= 0")

    def write_to(self, w: KaldiWriter) -> None:
        is_hmm = self.topo.is_hmm()
        w.token("<TransitionModel>")
        w.newline()
        self.topo.write_to(w)
        w.token("<Triples>" if is_hmm else "<Tuples>")
        w.int32(len(self.tuples))
        w.newline()
        for row in self.tuples.tolist():
            for v in row[: 3 if is_hmm else 4]:
                w.int32(v)
            w.newline()
        w.token("</Triples>" if is_hmm else "</Tuples>")
        w.newline()
        w.token("<LogProbs>")
        w.newline()
        w.float_vector(self.log_probs)
        w.token("</LogProbs>")
        w.newline()
        w.token("</TransitionModel>")
        w.newline()

    def to_bytes(self, binary: bool = True) -> bytes:
        w = KaldiWriter(binary)
        if binary:
            w.raw(b"\x00B")
        self.write_to(w)
        return w.getvalue()

    def write(self, path: str | os.PathLike, binary: bool = True) -> None:
        """Write a Kaldi model file holding only the TransitionModel (binary by default)."""
        from asr.io.atomic import atomic_write_bytes

        atomic_write_bytes(Path(path), self.to_bytes(binary))

    def __eq__(self, other) -> bool:
        if not isinstance(other, TransitionModel):
            return NotImplemented
        return (self.topo == other.topo and np.array_equal(self.tuples, other.tuples)
                and np.array_equal(self.log_probs, other.log_probs))

    def info(self) -> str:
        """Summary like Kaldi's ``am-info`` / ``hmm-info``."""
        return (f"number of phones {len(self.topo.phones)}\nnumber of pdfs {self.num_pdfs}\n"
                f"number of transition-ids {self.num_transition_ids}\n"
                f"number of transition-states {self.num_transition_states}")
