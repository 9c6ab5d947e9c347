"""Truncated-BPTT training data: utterances with pdf targets, cut into B parallel streams
of T-frame chunks with output delay, read from disk as training goes.

An :class:`UtteranceSet` knows every utterance's length and pdf targets (the alignments
stay in memory, as one int16/int32 array) and gives an utterance's features on demand:
:class:`FeatureSet` reads them from the data dir's ``feats.scp``/arks (kaldiio random
access, CMVN applied on the fly), :class:`InMemorySet` slices one in-memory array (tests,
benchmarks). Memory therefore does not grow with the corpus beyond the alignments.

Per epoch, a :class:`ChunkSchedule` assigns utterances (in a seeded shuffled order) to
the B streams — each stream takes the next utterance when its current one ends — and
records, per batch and stream, the utterance and chunk number (``[num_batches, B]``: a
few bytes per chunk, not per frame). With N ranks or workers, every process computes the
same schedule and rank r runs streams ``[r·B/N, (r+1)·B/N)``: :class:`BatchReader` reads
only their utterances, keeping each stream's current utterance in memory, and a
:class:`Prefetcher` thread assembles the next batches while the model computes.

Output delay d: an utterance of n frames becomes a sequence of n + d steps; step s reads
frame min(s, n−1) (the last frame repeated d times) and is trained on the target of
frame s − d; the first d steps have no target. A stream's last chunk of an utterance is
padded to T steps; padding has no target (``IGNORE``) and, because the models are
causal and a new utterance resets the state, gets no gradient. ``keep[j]`` is False
when stream j starts a new utterance (or is idle) at a batch: its state must be zeroed.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping

import numpy as np

from asr.errors import AlignmentError, AsrError, FeatureError
from asr.failures import Failures

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

IGNORE = -100  # target value of steps without a target (torch cross_entropy's ignore_index)


class UtteranceSet:
    """Utterances with pdf targets (concatenated, ``offsets[u]:offsets[u+1]``); features
    come from :meth:`features`. Subclasses say where features live."""

    def __init__(self, name: str, utt_ids: list[str], offsets: np.ndarray, targets: np.ndarray, feat_dim: int):
        self.name = name
        self.utt_ids = utt_ids
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self._targets = targets
        self.feat_dim = int(feat_dim)

    def __len__(self) -> int:
        return len(self.utt_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def num_frames(self) -> int:
        return int(self.offsets[-1])

    def targets(self, u: int) -> np.ndarray:
        """int64 pdf ids of utterance index ``u``."""
        return self._targets[self.offsets[u]:self.offsets[u + 1]].astype(np.int64)

    def all_targets(self) -> np.ndarray:
        return self._targets

    def pdf_counts(self, num_pdfs: int) -> np.ndarray:
        return np.bincount(self._targets.astype(np.int64), minlength=num_pdfs)

    def features(self, u: int) -> np.ndarray:
        """float32 ``[n, D]`` features (normalised) of utterance index ``u``."""
        raise NotImplementedError

    def shard(self, rank: int, world_size: int) -> "UtteranceSet":
        """Every ``world_size``-th utterance from ``rank`` on (dev evaluation sharded over ranks)."""
        if world_size == 1:
            return self
        idx = np.arange(rank, len(self), world_size)
        return _Subset(self, idx)


class _Subset(UtteranceSet):
    def __init__(self, parent: UtteranceSet, idx: np.ndarray):
        lengths = parent.lengths[idx]
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        tg = np.concatenate([parent.targets(int(u)) for u in idx]) if len(idx) else np.zeros(0, np.int64)
        super().__init__(parent.name, [parent.utt_ids[int(u)] for u in idx], offsets, tg, parent.feat_dim)
        self._parent = parent
        self._idx = idx

    def features(self, u: int) -> np.ndarray:
        return self._parent.features(int(self._idx[u]))


class InMemorySet(UtteranceSet):
    """All features in one ``float32[N, D]`` array (small corpora, tests, benchmarks)."""

    def __init__(self, name: str, utt_ids: list[str], offsets: np.ndarray, targets: np.ndarray, feats: np.ndarray):
        super().__init__(name, utt_ids, offsets, targets, feats.shape[1])
        self.feats = np.asarray(feats, dtype=np.float32)

    def features(self, u: int) -> np.ndarray:
        return self.feats[self.offsets[u]:self.offsets[u + 1]]


class FeatureSet(UtteranceSet):
    """Features read from a data dir (``asr.features.reader.FeatureReader``) when needed."""

    def __init__(self, name: str, utt_ids: list[str], offsets: np.ndarray, targets: np.ndarray, feat_dim: int,
                 reader):
        super().__init__(name, utt_ids, offsets, targets, feat_dim)
        self.reader = reader

    def features(self, u: int) -> np.ndarray:
        utt = self.utt_ids[u]
        f = self.reader[utt]
        n = self.offsets[u + 1] - self.offsets[u]
        if f.ndim != 2 or f.shape[1] != self.feat_dim:
            raise FeatureError(f"{self.name}: utterance {utt}: feature dim {f.shape[-1]} != {self.feat_dim}")
        if len(f) != n:
            raise FeatureError(f"{self.name}: utterance {utt}: {len(f)} frames, utt2num_frames says {n}")
        return np.asarray(f, dtype=np.float32)


def _target_dtype(num_pdfs: int):
    return np.int16 if num_pdfs <= np.iinfo(np.int16).max else np.int32


def _fit_alignment(utt: str, ali: np.ndarray, n: int, tol: int) -> np.ndarray | None:
    """The alignment cut or padded (last pdf repeated) to n frames, or None when it differs by more than tol."""
    if len(ali) == n:
        return ali
    if abs(len(ali) - n) > tol or len(ali) == 0:
        return None
    return np.concatenate([ali, np.full(n - len(ali), ali[-1], ali.dtype)]) if len(ali) < n else ali[:n]


class _SkipCounter:
    """Skip-and-count while pairing features with alignments (:class:`asr.failures.Failures`):
    every skipped utterance is kept with its reason; :meth:`report` logs them (the first
    20), one line of counts by reason, and fails on nothing left or above ``max_failures``."""

    def __init__(self, name: str, total: int = 0):
        self.name = name
        self.failures = Failures(name, total=total)
        self.no_ali = self.bad_len = self.empty = self.unreadable = 0

    def num_frames(self, reader, utt: str) -> int:
        """Frames of ``utt`` (from utt2num_frames, else its matrix); -1 when it cannot be read."""
        try:
            return reader.num_frames(utt)
        except AsrError as e:
            self.unreadable += 1
            self.failures.add(utt, str(e))
            return -1

    def mismatch(self, utt: str, n: int, m: int) -> None:
        self.bad_len += 1
        self.failures.add(utt, f"{n} frames but {m} alignment entries")

    def missing(self, utts: list[str]) -> None:
        self.no_ali += len(utts)
        self.failures.extend((u, "no alignment") for u in utts)

    def no_frames(self, utts: list[str]) -> None:
        self.empty += len(utts)
        self.failures.extend((u, "no frames") for u in utts)

    def report(self, kept: int, max_failures: float = 1.0) -> None:
        skipped = self.no_ali + self.bad_len + self.empty + self.unreadable
        unreadable = f", {self.unreadable} unreadable" if self.unreadable else ""
        if skipped:
            self.failures.log(log)
            log.warning("%s: skipped %d utterance(s): %d without alignment, %d with mismatched length, %d empty%s",
                        self.name, skipped, self.no_ali, self.bad_len, self.empty, unreadable)
        if not kept:
            raise AlignmentError(f"{self.name}: no utterance has both features and a matching alignment "
                                 f"({self.no_ali} without alignment, {self.bad_len} length mismatches, "
                                 f"{self.empty} empty{unreadable})")
        self.failures.check(max_failures, AlignmentError, self.name)


def _check_range(name: str, utt: str, ali: np.ndarray, num_pdfs: int) -> None:
    if len(ali) and (ali.min() < 0 or ali.max() >= num_pdfs):
        bad = int(ali.max()) if ali.max() >= num_pdfs else int(ali.min())
        raise AlignmentError(f"{name}: utterance {utt}: pdf id {bad} out of range [0, {num_pdfs})")


def open_feature_set(reader, alignments: Iterable[tuple[str, np.ndarray]], num_pdfs: int, name: str | None = None,
                     length_tolerance: int = 0, max_failures: float = 1.0) -> FeatureSet:
    """Pair a data dir's utterances (``FeatureReader``, in its sorted order) with pdf
    alignments ``(utt, int[n])`` without reading the features (lengths come from
    ``utt2num_frames``). Utterances without an alignment, empty ones, and those whose
    alignment length differs from the frame count by more than ``length_tolerance`` are
    skipped and counted (an error when more than ``max_failures`` of them, a fraction, or
    all are skipped); a pdf id outside ``[0, num_pdfs)`` is an error naming the utterance.

    The targets go straight into one preallocated int16/int32 array, so reading the
    alignments of a large corpus needs their final size, not a multiple of it."""
    name = name or str(reader.data_dir)
    ids = reader.utt_ids
    index = {u: i for i, u in enumerate(ids)}
    skip = _SkipCounter(name, total=len(ids))
    n = np.fromiter((skip.num_frames(reader, u) for u in ids), dtype=np.int64, count=len(ids))
    unreadable = n < 0
    n[unreadable] = 0
    off = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(n, out=off[1:])
    targets = np.empty(int(off[-1]), dtype=_target_dtype(num_pdfs))
    seen = np.zeros(len(ids), dtype=bool)
    good = np.zeros(len(ids), dtype=bool)
    for utt, a in alignments:
        i = index.get(utt)
        if i is None:
            continue
        seen[i] = True
        _check_range(name, utt, a, num_pdfs)
        if n[i] == 0:
            continue
        fitted = _fit_alignment(utt, a, int(n[i]), length_tolerance)
        if fitted is None:
            skip.mismatch(utt, int(n[i]), len(a))
            continue
        targets[off[i]:off[i + 1]] = fitted
        good[i] = True
    del index
    skip.missing([ids[i] for i in np.flatnonzero(~seen & ~unreadable).tolist()])
    skip.no_frames([ids[i] for i in np.flatnonzero(seen & (n == 0) & ~unreadable).tolist()])
    keep = np.flatnonzero(good)
    skip.report(len(keep), max_failures)
    # drop the skipped utterances' slots (moving the kept ones left, in place)
    offsets = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(n[keep], out=offsets[1:])
    if len(keep) < len(ids):
        for j, i in enumerate(keep.tolist()):
            if off[i] != offsets[j]:
                targets[offsets[j]:offsets[j + 1]] = targets[off[i]:off[i + 1]]
        targets.resize(int(offsets[-1]), refcheck=False)
    utts = [ids[i] for i in keep.tolist()]
    dim = _feature_dim(reader, utts)
    log.info("%s: %d utterances, %d frames", name, len(utts), offsets[-1])
    return FeatureSet(name, utts, offsets, targets, dim, reader)


def _feature_dim(reader, utts: list[str]) -> int:
    for utt in utts:
        try:
            return int(reader[utt].shape[1])
        except AsrError as e:
            log.warning("%s", e)
    raise FeatureError(f"{reader.data_dir}: no utterance's features can be read")


def load_corpus(features: Iterable[tuple[str, np.ndarray]], alignments: Mapping[str, np.ndarray],
                num_pdfs: int, name: str = "corpus", length_tolerance: int = 0,
                max_failures: float = 1.0) -> InMemorySet:
    """Read features ``(utt, float32[T, D])`` into memory and pair them with pdf alignments
    (``utt -> int[T]``); the same skip-and-count rules as :func:`open_feature_set`."""
    feats_parts: list[np.ndarray] = []
    tgt_parts: list[np.ndarray] = []
    utts: list[str] = []
    skip = _SkipCounter(name)
    dim = None
    for utt, f in features:
        skip.failures.total += 1
        ali = alignments.get(utt)
        if ali is None:
            skip.missing([utt])
            continue
        f = np.asarray(f, dtype=np.float32)
        if len(f) == 0:
            skip.no_frames([utt])
            continue
        if dim is None:
            dim = f.shape[1]
        elif f.shape[1] != dim:
            raise AlignmentError(f"{name}: utterance {utt}: feature dim {f.shape[1]} != {dim}")
        fitted = _fit_alignment(utt, np.asarray(ali), len(f), length_tolerance)
        if fitted is None:
            skip.mismatch(utt, len(f), len(ali))
            continue
        _check_range(name, utt, fitted, num_pdfs)
        utts.append(utt)
        feats_parts.append(f)
        tgt_parts.append(np.asarray(fitted, dtype=_target_dtype(num_pdfs)))
    skip.report(len(utts), max_failures)
    offsets = np.zeros(len(utts) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in tgt_parts], out=offsets[1:])
    log.info("%s: %d utterances, %d frames", name, len(utts), offsets[-1])
    return InMemorySet(name, utts, offsets, np.concatenate(tgt_parts), np.concatenate(feats_parts))


# --- the stream schedule ---------------------------------------------------------------

@dataclass
class ChunkSchedule:
    """One pass over a set of utterances: per batch and stream, the utterance index
    (``-1`` = idle) and its chunk number. Index arrays for one batch come from :meth:`steps`."""

    utt: np.ndarray  # int64 [num_batches, B]
    chunk_index: np.ndarray  # int32 [num_batches, B]
    lengths: np.ndarray  # int64 [U]
    stream_of: np.ndarray  # int64 [U]: the stream each utterance is dealt to (-1: not in the order)
    chunk: int
    delay: int

    def __len__(self) -> int:
        return int(self.utt.shape[0])

    @property
    def streams(self) -> int:
        return int(self.utt.shape[1])

    @property
    def reset(self) -> np.ndarray:
        """bool [num_batches, B]: the stream's state must be zeroed before the batch."""
        return (self.utt < 0) | (self.chunk_index == 0)

    @property
    def num_target_frames(self) -> int:
        return int(self.lengths[self.stream_of >= 0].sum())

    def valid_counts(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """int64 [num_batches]: steps with a target per batch, over streams ``[lo, hi)``."""
        u = self.utt[:, lo:hi]
        active = u >= 0
        n = np.where(active, self.lengths[np.where(active, u, 0)], 0)
        start = self.chunk_index[:, lo:hi].astype(np.int64) * self.chunk
        cnt = np.minimum(start + self.chunk, n + self.delay) - np.maximum(start, self.delay)
        return np.where(active, np.clip(cnt, 0, self.chunk), 0).sum(axis=1)

    def share(self, lo: int, hi: int) -> tuple[int, int]:
        """``(utterances, frames)`` dealt to streams ``[lo, hi)``."""
        mine = (self.stream_of >= lo) & (self.stream_of < hi)
        return int(mine.sum()), int(self.lengths[mine].sum())

    def steps(self, b: int, lo: int = 0, hi: int | None = None):
        """For batch ``b`` and streams ``[lo, hi)``: ``(utt[S], frame[S, T], target_frame[S, T], keep[S])``
        with frame/target indices within each utterance (target ``-1``: no target)."""
        u = self.utt[b, lo:hi]
        active = u >= 0
        n = np.where(active, self.lengths[np.where(active, u, 0)], 1)[:, None]
        s = self.chunk_index[b, lo:hi].astype(np.int64)[:, None] * self.chunk + np.arange(self.chunk)
        frame = np.minimum(s, n - 1)
        has_target = active[:, None] & (s >= self.delay) & (s < n + self.delay)
        target = np.where(has_target, s - self.delay, -1)
        keep = active & (self.chunk_index[b, lo:hi] > 0)
        return u, frame, target, keep


def make_schedule(lengths: np.ndarray, streams: int, chunk: int, delay: int, order: np.ndarray | None = None) -> ChunkSchedule:
    """Assign utterances (in ``order``) to ``streams`` streams and cut them into chunks.

    Each utterance goes to the stream that frees up first (ties: lowest stream id)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    U = len(lengths)
    if streams < 1 or chunk < 1 or delay < 0:
        raise ValueError(f"bad schedule: streams={streams} chunk={chunk} delay={delay}")
    order = np.arange(U) if order is None else np.asarray(order, dtype=np.int64)
    nchunks = -(-(lengths + delay) // chunk)  # ceil
    heap = [(0, j) for j in range(streams)]
    u_stream = np.full(U, -1, dtype=np.int64)
    u_start = np.zeros(U, dtype=np.int64)
    for u in order.tolist():
        pos, j = heapq.heappop(heap)
        u_stream[u] = j
        u_start[u] = pos
        heapq.heappush(heap, (pos + int(nchunks[u]), j))
    nb = int(max(p for p, _ in heap)) if U else 0
    n = nchunks[order]
    slot_utt = np.repeat(order, n)
    first = np.repeat(np.cumsum(n) - n, n)
    slot_chunk = np.arange(len(slot_utt)) - first
    utt = np.full((nb, streams), -1, dtype=np.int64)
    cidx = np.zeros((nb, streams), dtype=np.int32)
    utt[u_start[slot_utt] + slot_chunk, u_stream[slot_utt]] = slot_utt
    cidx[u_start[slot_utt] + slot_chunk, u_stream[slot_utt]] = slot_chunk
    return ChunkSchedule(utt, cidx, lengths, u_stream, int(chunk), int(delay))


def epoch_order(num_utts: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled utterance order of ``epoch`` (depends only on seed and epoch)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(num_utts)


# --- batches ---------------------------------------------------------------------------

@dataclass
class Batch:
    """One batch of a rank's streams: ``x[S, T, D]`` float32, ``y[S, T]`` int64 (IGNORE =
    no target), ``keep[S]`` (False: zero the stream's state first), ``index`` in the schedule,
    ``bad``: unreadable utterances that start in this batch (each is counted once in an epoch,
    also when a resumed run reads it again in the middle)."""

    index: int
    x: "torch.Tensor"
    y: "torch.Tensor"
    keep: "torch.Tensor"
    bad: int = 0


class BatchReader:
    """Batches ``start..`` of a schedule for streams ``[lo, hi)``, reading each utterance
    once (a stream keeps its current utterance until it moves on).

    An utterance whose features cannot be read (or do not match their length) is skipped
    and counted: its steps get zero input and no target, so every rank still runs every
    batch. ``bad_utterances`` lists them."""

    def __init__(self, data: UtteranceSet, sched: ChunkSchedule, lo: int = 0, hi: int | None = None, start: int = 0,
                 pin_memory: bool = False):
        self.data = data
        self.pin_memory = pin_memory  # page-locked batches (asynchronous copies to a GPU)
        self.sched = sched
        self.lo = lo
        self.hi = sched.streams if hi is None else hi
        self.start = start
        self._cur: dict[int, tuple[int, np.ndarray | None, np.ndarray | None]] = {}
        self.bad_utterances: list[str] = []

    def __len__(self) -> int:
        return max(0, len(self.sched) - self.start)

    def _utterance(self, j: int, u: int):
        cur = self._cur.get(j)
        if cur is None or cur[0] != u:
            try:
                cur = (u, self.data.features(u), self.data.targets(u))
            except AsrError as e:
                self.bad_utterances.append(self.data.utt_ids[u])
                if len(self.bad_utterances) <= 5:
                    log.warning("%s; utterance skipped", e)
                cur = (u, None, None)
            self._cur[j] = cur
        return cur[1], cur[2]

    def batch(self, b: int) -> Batch:
        import torch

        u, frame, target, keep = self.sched.steps(b, self.lo, self.hi)
        S, T = frame.shape
        x = np.zeros((S, T, self.data.feat_dim), dtype=np.float32)
        y = np.full((S, T), IGNORE, dtype=np.int64)
        bad = 0
        for j in np.flatnonzero(u >= 0).tolist():
            feats, tg = self._utterance(self.lo + j, int(u[j]))
            if feats is None:
                bad += int(not keep[j])  # its first chunk
                continue
            x[j] = feats[frame[j]]
            t = target[j]
            has = t >= 0
            y[j, has] = tg[t[has]]
        for j in [j for j in self._cur if not (self.lo <= j < self.hi) or u[j - self.lo] < 0]:
            del self._cur[j]  # idle streams drop their utterance
        batch = Batch(b, torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(keep), bad)
        if self.pin_memory:
            batch.x, batch.y = batch.x.pin_memory(), batch.y.pin_memory()
        return batch

    def __iter__(self) -> Iterator[Batch]:
        for b in range(self.start, len(self.sched)):
            yield self.batch(b)


def get_batch(data: UtteranceSet, sched: ChunkSchedule, b: int):
    """``(x, y, keep)`` of batch ``b`` over all streams (tests and tools; training uses BatchReader)."""
    batch = BatchReader(data, sched, start=b).batch(b)
    return batch.x, batch.y, batch.keep


class Prefetcher:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead (so loading
    overlaps compute and the buffer is bounded). Exceptions reach the consumer."""

    _END = object()

    def __init__(self, items: Iterable, depth: int):
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(items),), daemon=True, name="asr-prefetch")
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, it) -> None:
        try:
            for item in it:
                if not self._put(item):
                    return
        except BaseException as e:  # handed to the consumer
            self._put(e)
            return
        self._put(self._END)

    def __iter__(self):
        while True:
            item = self._q.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
