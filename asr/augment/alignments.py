"""Alignments of augmented utterances: CTMs and frame alignments under a speed change.

A speed factor f maps time t of the source to t / f. CTM lines are rescaled so (as every
line is). Frame alignments are rescaled at the level of HMM-state segments, so the
result is a valid transition-id sequence of the same states: the source's boundaries
between states move to their new times (rounded to the nearest frame, each state keeping
at least one frame), and every state visit is refilled with its self-loop transition-id
around the transition-id that leaves it, in the alignment's own order (Kaldi's reordered
default: leaving transition first; else last). The new frame count is the feature
count of the new audio (given by the caller), so the alignment matches ``make-fbank``'s
output. Alignments without transition-ids (pdf-only) are rescaled by runs of equal ids.

Boundary times use Kaldi's frame geometry: boundary b (between frames b−1 and b) lies at
b·shift + (length − shift)/2, halfway between the two frames' window centres.
"""

from __future__ import annotations

import numpy as np

from asr.hmm.kaldi_ali import is_reordered
from asr.errors import AlignmentError


def scale_ctm_line(line: str, new_key: str, factor: float) -> str:
    """One CTM line (``key channel start dur label [conf]``) with its key replaced and its
    times divided by ``factor`` (written with 4 decimals; unchanged text when factor is 1)."""
    t = line.split()
    if len(t) < 5:
        raise AlignmentError(f"CTM line has {len(t)} fields, expected at least 5: {line.strip()!r}")
    if factor == 1.0:
        return " ".join([new_key] + t[1:]) + "\n"
    start, dur = float(t[2]) / factor, float(t[3]) / factor
    return " ".join([new_key, t[1], f"{start:.4f}", f"{dur:.4f}"] + t[4:]) + "\n"


def new_boundaries(bounds: np.ndarray, factor: float, num_frames: int, frame_shift: int = 160,
                   frame_length: int = 400) -> np.ndarray:
    """Segment boundaries (frame indices, first 0, last = old frame count) after a speed
    change by ``factor``, for ``num_frames`` new frames; every segment keeps ≥ 1 frame.
    Raises AlignmentError when ``num_frames`` is less than the number of segments."""
    nseg = len(bounds) - 1
    if num_frames < nseg:
        raise AlignmentError(f"{num_frames} frames cannot hold {nseg} HMM states")
    c = (frame_length - frame_shift) / (2.0 * frame_shift)
    b = np.rint((bounds.astype(np.float64) + c) / factor - c).astype(np.int64)
    b[0], b[-1] = 0, num_frames
    k = np.arange(nseg + 1)
    # at least one frame per segment: b[k] >= b[k-1] + 1 forwards, b[k] <= b[k+1] - 1 backwards
    b = np.maximum.accumulate(b - k) + k
    b[-1] = num_frames
    return np.minimum.accumulate((b - k)[::-1])[::-1] + k


def warp_tids(tids: np.ndarray, factor: float, num_frames: int, tm, self_loops: np.ndarray | None = None,
              frame_shift: int = 160, frame_length: int = 400) -> np.ndarray:
    """A transition-id alignment rescaled to ``num_frames`` frames (see module doc).
    ``tm``: the ``TransitionModel`` of the alignment; ``self_loops``: ``self_loop_tids(tm)``
    (computed when not given)."""
    tids = np.asarray(tids, dtype=np.int64)
    if not len(tids):
        raise AlignmentError("empty alignment")
    if tids.min() < 1 or tids.max() > tm.num_transition_ids:
        raise AlignmentError(f"transition-id out of range 1..{tm.num_transition_ids}")
    leaving = np.nonzero(~tm.is_self_loop[tids])[0]
    reordered = is_reordered(tm, tids)
    if reordered:  # Kaldi's default: a visit is [leaving tid, self-loop, self-loop, ...]
        starts = leaving if len(leaving) and leaving[0] == 0 else np.concatenate([[0], leaving])
        bounds = np.concatenate([starts, [len(tids)]])
        key = tids[starts]
    else:  # a visit is [self-loop, ..., leaving tid]
        ends = leaving + 1
        if not len(ends) or ends[-1] != len(tids):
            ends = np.append(ends, len(tids))  # a truncated last visit (ends in its self-loop)
        bounds = np.concatenate([[0], ends])
        key = tids[ends - 1]
    new = new_boundaries(bounds, factor, num_frames, frame_shift, frame_length)
    lengths = np.diff(new)
    if self_loops is None:
        self_loops = self_loop_tids(tm)
    loop = self_loops[tm.tid2tstate[key]]
    if np.any((lengths > 1) & (loop == 0)):
        raise AlignmentError("a state without a self-loop would need more than one frame")
    out = np.repeat(np.where(loop > 0, loop, key), lengths)
    out[new[:-1] if reordered else new[1:] - 1] = key
    return out.astype(np.int32)


def warp_runs(values: np.ndarray, factor: float, num_frames: int, frame_shift: int = 160,
              frame_length: int = 400) -> np.ndarray:
    """Any per-frame id sequence (pdfs, phones) rescaled by runs of equal values."""
    values = np.asarray(values)
    if not len(values):
        raise AlignmentError("empty alignment")
    change = np.nonzero(values[1:] != values[:-1])[0] + 1
    bounds = np.concatenate([[0], change, [len(values)]])
    new = new_boundaries(bounds, factor, num_frames, frame_shift, frame_length)
    return np.repeat(values[bounds[:-1]], np.diff(new))


def self_loop_tids(tm) -> np.ndarray:
    """transition state -> its self-loop transition-id (0 when it has none)."""
    out = np.zeros(tm.num_transition_states + 1, dtype=np.int64)
    sl = np.nonzero(tm.is_self_loop)[0]
    out[tm.tid2tstate[sl]] = sl
    return out
