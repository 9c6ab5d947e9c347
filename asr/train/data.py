"""Truncated-BPTT data: an in-memory corpus cut into B parallel utterance streams of
T-frame chunks, with output delay.

The whole (small) corpus lives in memory as one ``float32[N, D]`` tensor of features
plus ``int64[N]`` pdf targets and utterance offsets. Per epoch, a :class:`ChunkSchedule`
assigns utterances (in a seeded shuffled order) to B streams — each stream takes the
next utterance when its current one ends — and precomputes, for every batch, the
feature row and target row of each (stream, step) as index arrays. A batch is then two
gathers (no per-frame Python).

Output delay d: an utterance of n frames becomes a sequence of n + d steps; step s reads
frame min(s, n−1) (the last frame repeated d times) and is trained on the target of
frame s − d; the first d steps have no target. A stream's last chunk of an utterance is
padded to T steps; padding has no target (``IGNORE``) and, because the models are
causal and a new utterance resets the state, gets no gradient. ``reset[b, j]`` is True
when stream j starts a new utterance (or is idle) at batch b: its state must be zeroed.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from asr.errors import AlignmentError

log = logging.getLogger(__name__)

IGNORE = -100  # target value of steps without a target (torch cross_entropy's ignore_index)


@dataclass
class Corpus:
    """Features and targets of a set of utterances, concatenated."""

    utt_ids: list[str]
    feats: "torch.Tensor"  # float32 [N, D]  # noqa: F821
    targets: "torch.Tensor"  # int64 [N]  # noqa: F821
    offsets: np.ndarray  # int64 [U + 1]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def num_frames(self) -> int:
        return int(self.offsets[-1])

    @property
    def feat_dim(self) -> int:
        return int(self.feats.shape[1])


def load_corpus(features: Iterable[tuple[str, np.ndarray]], alignments: Mapping[str, np.ndarray],
                num_pdfs: int, name: str = "corpus", length_tolerance: int = 0) -> Corpus:
    """Pair features ``(utt, float32[T, D])`` with pdf alignments (``utt -> int[T]``).

    Utterances without an alignment, or whose alignment length differs from the frame
    count by more than ``length_tolerance`` (within it: the alignment is cut or its last
    pdf repeated), are skipped and counted (logged). A pdf id outside ``[0, num_pdfs)`` is
    an error naming the utterance. Raises AlignmentError when nothing is left.
    """
    import torch

    feats_parts: list[np.ndarray] = []
    tgt_parts: list[np.ndarray] = []
    utts: list[str] = []
    no_ali = bad_len = empty = 0
    dim = None
    for utt, f in features:
        ali = alignments.get(utt)
        if ali is None:
            no_ali += 1
            continue
        f = np.asarray(f, dtype=np.float32)
        if len(f) == 0:
            empty += 1
            continue
        if dim is None:
            dim = f.shape[1]
        elif f.shape[1] != dim:
            raise AlignmentError(f"{name}: utterance {utt}: feature dim {f.shape[1]} != {dim}")
        if len(ali) != len(f):
            if abs(len(ali) - len(f)) > length_tolerance or len(ali) == 0:
                bad_len += 1
                if bad_len <= 5:
                    log.warning("%s: utterance %s: %d frames but %d alignment entries; skipped", name, utt, len(f), len(ali))
                continue
            ali = np.concatenate([ali, np.full(len(f) - len(ali), ali[-1])])[: len(f)] if len(ali) < len(f) else ali[: len(f)]
        if len(ali) and (ali.min() < 0 or ali.max() >= num_pdfs):
            raise AlignmentError(f"{name}: utterance {utt}: pdf id {int(ali.max())} out of range [0, {num_pdfs})")
        utts.append(utt)
        feats_parts.append(f)
        tgt_parts.append(np.asarray(ali, dtype=np.int64))
    skipped = no_ali + bad_len + empty
    if skipped:
        log.warning("%s: skipped %d utterance(s): %d without alignment, %d with mismatched length, %d empty",
                    name, skipped, no_ali, bad_len, empty)
    if not utts:
        raise AlignmentError(f"{name}: no utterance has both features and a matching alignment "
                             f"({no_ali} without alignment, {bad_len} length mismatches, {empty} empty)")
    offsets = np.zeros(len(utts) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in tgt_parts], out=offsets[1:])
    log.info("%s: %d utterances, %d frames", name, len(utts), offsets[-1])
    return Corpus(utts, torch.from_numpy(np.concatenate(feats_parts)), torch.from_numpy(np.concatenate(tgt_parts)), offsets)


@dataclass
class ChunkSchedule:
    """Index arrays of one pass over a corpus: ``[num_batches, B, T]`` feature rows and
    target rows (``-1`` = no target), ``reset[num_batches, B]``."""

    feat_index: np.ndarray
    target_index: np.ndarray
    reset: np.ndarray
    utt: np.ndarray  # [num_batches, B] utterance index per stream (-1 = idle)

    def __len__(self) -> int:
        return int(self.feat_index.shape[0])

    @property
    def num_target_frames(self) -> int:
        return int((self.target_index >= 0).sum())


def make_schedule(lengths: np.ndarray, streams: int, chunk: int, delay: int, order: np.ndarray | None = None) -> ChunkSchedule:
    """Assign utterances (in ``order``) to ``streams`` streams and cut them into chunks.

    ``lengths[u]``: frames of utterance u; the offsets are ``cumsum`` of lengths."""
    lengths = np.asarray(lengths, dtype=np.int64)
    U = len(lengths)
    if streams < 1 or chunk < 1 or delay < 0:
        raise ValueError(f"bad schedule: streams={streams} chunk={chunk} delay={delay}")
    order = np.arange(U) if order is None else np.asarray(order, dtype=np.int64)
    offsets = np.zeros(U + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    nchunks = -(-(lengths + delay) // chunk)  # ceil
    # each utterance goes to the stream that frees up first (ties: lowest stream id)
    heap = [(0, j) for j in range(streams)]
    u_stream = np.empty(U, dtype=np.int64)
    u_start = np.empty(U, dtype=np.int64)
    for u in order.tolist():
        pos, j = heapq.heappop(heap)
        u_stream[u] = j
        u_start[u] = pos
        heapq.heappush(heap, (pos + int(nchunks[u]), j))
    nb = int(max(p for p, _ in heap)) if U else 0
    # one row per (utterance, chunk)
    sel = order
    n = nchunks[sel]
    slot_utt = np.repeat(sel, n)
    first = np.repeat(np.cumsum(n) - n, n)
    slot_chunk = np.arange(len(slot_utt)) - first
    slot_batch = u_start[slot_utt] + slot_chunk
    slot_stream = u_stream[slot_utt]
    utt = np.full((nb, streams), -1, dtype=np.int64)
    cidx = np.zeros((nb, streams), dtype=np.int64)
    utt[slot_batch, slot_stream] = slot_utt
    cidx[slot_batch, slot_stream] = slot_chunk
    active = utt >= 0
    u = np.where(active, utt, 0)
    n_u = np.where(active, lengths[u], 1)[..., None]
    off = offsets[u][..., None]
    steps = cidx[..., None] * chunk + np.arange(chunk)  # [nb, B, T]
    feat_index = off + np.minimum(steps, n_u - 1)
    has_target = active[..., None] & (steps >= delay) & (steps < n_u + delay)
    target_index = np.where(has_target, off + steps - delay, -1)
    reset = ~active | (cidx == 0)
    return ChunkSchedule(feat_index, target_index, reset, utt)


def epoch_order(num_utts: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled utterance order of ``epoch`` (depends only on seed and epoch)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(num_utts)


def get_batch(corpus: Corpus, sched: ChunkSchedule, b: int):
    """``(x[B, T, D] float32, y[B, T] int64 with IGNORE, keep[B] bool)`` for batch ``b``:
    ``keep`` is False for streams whose state must be reset before this batch."""
    import torch

    fi = torch.from_numpy(sched.feat_index[b])
    ti = torch.from_numpy(sched.target_index[b])
    x = corpus.feats[fi]
    y = torch.where(ti >= 0, corpus.targets[ti.clamp(min=0)], torch.full_like(ti, IGNORE))
    keep = torch.from_numpy(~sched.reset[b])
    return x, y, keep
