"""Phone segments (+ HMM states) → transition-ids, pdfs and per-frame phones under a tree and
transition model; vectorised over frames.

An utterance is a sequence of phone instances ``phones[i]`` lasting ``lengths[i]`` frames.
HMM states inside an instance are either given per frame or split uniformly along the
topology's left-to-right path (state ``s`` of ``S`` gets frames ``[s·L/S, (s+1)·L/S)``).
The pdf of each state comes from the tree with the instance's phone context (0 outside the
utterance). Transition-ids follow Kaldi's training graphs: with ``reorder`` (Kaldi's
default) a state's frames are ``forward, self-loop, self-loop, ...``; without it
``self-loop, ..., forward``. The forward transition of a state goes to the next state of
the path, the last one to the final state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.errors import AlignmentError, ModelError
from asr.hmm.topology import Topology
from asr.hmm.transition_model import TransitionModel
from asr.hmm.tree import ContextDependency


@dataclass
class FrameAlignment:
    tids: np.ndarray  # int32 [T]
    pdfs: np.ndarray  # int32 [T]
    phones: np.ndarray  # int32 [T]


class AlignmentCompiler:
    """Caches per-model lookups; ``compile(phones, lengths, states=None)`` per utterance."""

    def __init__(self, tree: ContextDependency, tm: TransitionModel, reorder: bool = True):
        self.tree = tree
        self.tm = tm
        self.topo: Topology = tm.topo
        self.reorder = reorder
        max_phone = max(self.topo.phones)
        self.num_states = np.zeros(max_phone + 1, dtype=np.int32)  # emitting states (entry size - 1)
        max_s = max(len(e) for e in self.topo.entries)
        self.fwd_class = np.full((max_phone + 1, max_s), -1, dtype=np.int32)
        self.loop_class = np.full((max_phone + 1, max_s), -1, dtype=np.int32)
        for p in self.topo.phones:
            entry = self.topo.topology_for_phone(p)
            self.num_states[p] = len(entry) - 1
            for j, st in enumerate(entry):
                self.fwd_class[p, j] = st.forward_pdf_class
                self.loop_class[p, j] = st.self_loop_pdf_class
        self.min_length = self.num_states.copy()  # uniform split visits every state once
        # tuple encoding (sorted like tm.tuples)
        self._ms = max_s + 1
        self._np = tm.num_pdfs + 1
        self._keys = self._encode(tm.tuples[:, 0], tm.tuples[:, 1], tm.tuples[:, 2], tm.tuples[:, 3])
        # (tstate, dest) -> tid
        self.tid_table = np.zeros((tm.num_transition_states + 1, max_s + 1), dtype=np.int32)
        t = np.arange(1, tm.num_transition_ids + 1)
        self.tid_table[tm.tid2tstate[t], tm.tid2dest[t]] = t
        self._base = max_phone + 1
        self._table_keys = None

    def _encode(self, phone, state, fpdf, lpdf) -> np.ndarray:
        return ((phone.astype(np.int64) * self._ms + state) * self._np + fpdf) * self._np + lpdf

    def compile(self, phones: np.ndarray, lengths: np.ndarray, states: np.ndarray | None = None,
                utt: str = "?") -> FrameAlignment:
        phones = np.asarray(phones, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        if len(phones) == 0:
            z = np.zeros(0, np.int32)
            return FrameAlignment(z, z, z)
        if phones.max() >= len(self.num_states) or np.any(self.num_states[phones] == 0):
            bad = [int(p) for p in phones if p >= len(self.num_states) or self.num_states[p] == 0][0]
            raise AlignmentError(f"utterance {utt}: phone {bad} has no HMM topology")
        n_frames = int(lengths.sum())
        seg = np.repeat(np.arange(len(phones)), lengths)
        seg_start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        offset = np.arange(n_frames) - seg_start[seg]
        nstates = self.num_states[phones]
        if states is None:
            if np.any(lengths < nstates):
                i = int(np.nonzero(lengths < nstates)[0][0])
                raise AlignmentError(f"utterance {utt}: phone instance {i} has {lengths[i]} frames, "
                                     f"fewer than its {nstates[i]} states")
            states = (offset * nstates[seg]) // lengths[seg]
        else:
            states = np.asarray(states, dtype=np.int64)
            if len(states) != n_frames:
                raise AlignmentError(f"utterance {utt}: {len(states)} states for {n_frames} frames")
        frame_phone = phones[seg]
        # context windows per phone instance
        N, P = self.tree.context_width, self.tree.central_position
        padded = np.concatenate([np.zeros(P, np.int64), phones, np.zeros(N - 1 - P, np.int64)])
        windows = np.stack([padded[k : k + len(phones)] for k in range(N)], axis=1)
        fcls = self.fwd_class[frame_phone, states]
        lcls = self.loop_class[frame_phone, states]
        if np.any(fcls < 0):
            raise AlignmentError(f"utterance {utt}: a frame is assigned to a non-emitting HMM state")
        # pdfs for unique (segment, class) pairs
        fpdf = self._pdfs(windows, seg, fcls, utt)
        lpdf = fpdf if np.array_equal(fcls, lcls) else self._pdfs(windows, seg, lcls, utt)
        keys = self._encode(frame_phone, states, fpdf, lpdf)
        pos = np.searchsorted(self._keys, keys)
        pos = np.minimum(pos, len(self._keys) - 1)
        if np.any(self._keys[pos] != keys):
            i = int(np.nonzero(self._keys[pos] != keys)[0][0])
            raise AlignmentError(
                f"utterance {utt}: frame {i}: (phone {frame_phone[i]}, state {states[i]}, pdf {fpdf[i]}) is not in the "
                "transition model (tree and final.mdl do not match?)")
        tstate = pos + 1
        # runs of the same state inside a phone instance
        new_run = np.ones(n_frames, dtype=bool)
        new_run[1:] = (seg[1:] != seg[:-1]) | (states[1:] != states[:-1])
        run_id = np.cumsum(new_run) - 1
        run_starts = np.nonzero(new_run)[0]
        run_ends = np.concatenate([run_starts[1:], [n_frames]])
        # destination of each run: the next run's state in the same instance, else the final state
        nxt_state = np.concatenate([states[run_starts[1:]], [-1]])
        same_seg = np.concatenate([seg[run_starts[1:]] == seg[run_starts[:-1]], [False]])
        final_state = self.num_states[frame_phone[run_starts]]
        dest = np.where(same_seg, nxt_state, final_state)
        if self.reorder:
            fwd_frame = run_starts
        else:
            fwd_frame = run_ends - 1
        is_fwd = np.zeros(n_frames, dtype=bool)
        is_fwd[fwd_frame] = True
        tids = np.where(is_fwd, self.tid_table[tstate, dest[run_id]], self.tid_table[tstate, states])
        if np.any(tids == 0):
            i = int(np.nonzero(tids == 0)[0][0])
            what = "self-loop" if not is_fwd[i] else f"transition to state {dest[run_id[i]]}"
            raise AlignmentError(f"utterance {utt}: frame {i}: phone {frame_phone[i]} state {states[i]} has no {what} "
                                 "in its topology")
        return FrameAlignment(tids.astype(np.int32), self.tm.tid2pdf[tids], frame_phone.astype(np.int32))

    def set_pdf_table(self, windows: np.ndarray, classes: np.ndarray) -> None:
        """Precompute the pdfs of many (window, pdf class) rows at once (vectorised over the
        tree); ``compile`` then looks them up instead of walking the tree per utterance."""
        keys = self._context_keys(windows, classes)
        order = np.argsort(keys)
        self._table_keys = keys[order]
        self._table_pdfs = self.tree.compute_many(np.asarray(windows)[order], np.asarray(classes)[order])

    def _context_keys(self, windows, classes) -> np.ndarray:
        code = np.zeros(len(windows), dtype=np.int64)
        for k in range(self.tree.context_width):
            code = code * self._base + np.asarray(windows)[:, k]
        return code * 1024 + np.asarray(classes)

    def _pdfs(self, windows, seg, classes, utt) -> np.ndarray:
        pair = seg.astype(np.int64) * 1024 + classes
        uniq, inv = np.unique(pair, return_inverse=True)
        segs, cls = uniq // 1024, uniq % 1024
        out = None
        if self._table_keys is not None:
            keys = self._context_keys(windows[segs], cls)
            pos = np.minimum(np.searchsorted(self._table_keys, keys), len(self._table_keys) - 1)
            hit = self._table_keys[pos] == keys
            out = np.where(hit, self._table_pdfs[pos], -1)
            if not hit.all():
                out[~hit] = self.tree.compute_many(windows[segs][~hit], cls[~hit])
        else:
            out = self.tree.compute_many(windows[segs], cls)
        if np.any(out < 0):
            i = int(np.nonzero(out < 0)[0][0])
            raise AlignmentError(f"utterance {utt}: the tree has no pdf for phone window "
                                 f"{windows[segs[i]].tolist()} pdf-class {cls[i]}")
        return out[inv.reshape(-1)]


def fix_short_segments(lengths: np.ndarray, min_lengths: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Lengthen phone instances shorter than their minimum by taking frames from the nearest
    instances with frames to spare (boundaries in between shift). Returns (new lengths, number
    of instances lengthened), or None when the utterance is too short for its phones."""
    lengths = np.asarray(lengths, dtype=np.int64).copy()
    min_lengths = np.asarray(min_lengths, dtype=np.int64)
    short = np.nonzero(lengths < min_lengths)[0]
    if len(short) == 0:
        return lengths, 0
    if lengths.sum() < min_lengths.sum():
        return None
    n = len(lengths)
    for i in short.tolist():
        need = int(min_lengths[i] - lengths[i])
        for dist in range(1, n):
            for j in (i - dist, i + dist):
                if need and 0 <= j < n:
                    spare = int(lengths[j] - min_lengths[j])
                    if spare > 0:
                        t = min(spare, need)
                        lengths[j] -= t
                        lengths[i] += t
                        need -= t
            if not need:
                break
    return lengths, len(short)


def check_model_pair(tree: ContextDependency, tm: TransitionModel) -> None:
    if tree.num_pdfs != tm.num_pdfs:
        raise ModelError(f"tree has {tree.num_pdfs} pdfs but the transition model has {tm.num_pdfs}")
