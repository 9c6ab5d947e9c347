"""Kaldi transition-id alignments: ``ali-to-pdf``, ``ali-to-phones`` and ``SplitToPhones``
(``hmm/hmm-utils.cc``), vectorised over frames."""

from __future__ import annotations

import numpy as np

from asr.errors import AlignmentError
from asr.hmm.transition_model import TransitionModel


def check_tids(tm: TransitionModel, ali: np.ndarray, utt: str) -> np.ndarray:
    ali = np.asarray(ali, dtype=np.int32)
    if len(ali) and (ali.min() < 1 or ali.max() > tm.num_transition_ids):
        bad = int(ali[(ali < 1) | (ali > tm.num_transition_ids)][0])
        raise AlignmentError(
            f"utterance {utt}: transition-id {bad} out of range 1..{tm.num_transition_ids} (wrong final.mdl?)")
    return ali


def check_path(tm: TransitionModel, ali: np.ndarray, utt: str) -> np.ndarray:
    """Raise AlignmentError unless ``ali`` (transition-ids in range) is a path through the
    phones' HMMs of ``tm``: each visit of an HMM state is its self-loops and one forward
    transition, all of one transition state (Kaldi's reordered form: the forward transition
    first); a visit enters the state the previous forward transition went to, or state 0 of
    a phone after a phone's final transition; the last visit ends its phone. Transition-ids
    of another model fail here though they are in range. Vectorised over frames."""
    ali = np.asarray(ali, dtype=np.int32)
    n = len(ali)
    if n == 0:
        return ali
    loop = tm.is_self_loop[ali]
    if is_reordered(tm, ali):
        new = ~loop  # a visit starts with its forward transition
        last_fw = np.maximum.accumulate(np.where(loop, -1, np.arange(n)))
        prev = np.concatenate([[-1], last_fw[:-1]])  # the forward transition before each frame
        end = last_fw[-1]
    else:
        new = np.concatenate([[True], ~loop[:-1]])  # a visit starts after a forward transition
        prev = np.arange(-1, n - 1)
        end = n - 1 if not loop[-1] else -1
    tstate, state, phone = tm.tid2tstate[ali], tm.tid2hmm_state[ali], tm.tid2phone[ali]
    p = np.maximum(prev, 0)
    entered = np.where(tm.is_final[ali[p]], state == 0, (phone == phone[p]) & (state == tm.tid2dest[ali[p]]))
    ok = np.where(new, np.where(prev >= 0, entered, state == 0), (prev >= 0) & (tstate == tstate[p]))
    bad = np.flatnonzero(~ok)

    def desc(i: int) -> str:
        return f"transition-id {ali[i]} (phone {phone[i]}, HMM state {state[i]})"

    if len(bad):
        i = int(bad[0])
        after = f"after {desc(int(prev[i]))}" if prev[i] >= 0 else "at the start"
        raise AlignmentError(f"utterance {utt}: frame {i}: {desc(i)} {after} is not a path through the HMMs "
                             "(alignments of another final.mdl?)")
    if end < 0 or not tm.is_final[ali[end]]:
        raise AlignmentError(f"utterance {utt}: the alignment ends inside a phone, with {desc(n - 1)} "
                             "(alignments of another final.mdl?)")
    return ali


def ali_to_pdf(tm: TransitionModel, ali: np.ndarray, utt: str = "?") -> np.ndarray:
    """Kaldi ``ali-to-pdf``: the pdf of each transition-id."""
    return tm.tid2pdf[check_tids(tm, ali, utt)]


def is_reordered(tm: TransitionModel, ali: np.ndarray) -> bool:
    """Kaldi ``IsReordered``: self-loops after the forward transition (``--reorder=true``)."""
    if len(ali) == 0:
        return False
    ts = tm.tid2tstate[ali]
    loop = tm.is_self_loop[ali]
    change = np.nonzero((ts[:-1] != ts[1:]) & (loop[:-1] | loop[1:]))[0]
    if len(change):
        return bool(loop[change[0]])  # self-loop last: reordered; self-loop first: not
    if tm.is_self_loop[ali[0]]:
        return False
    return bool(tm.is_self_loop[ali[-1]])


def split_to_phones(tm: TransitionModel, ali: np.ndarray, utt: str = "?") -> tuple[np.ndarray, np.ndarray]:
    """Kaldi ``SplitToPhones``: the phone instances of an alignment as (phone ids, lengths)."""
    ali = check_tids(tm, ali, utt)
    n = len(ali)
    if n == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    final = tm.is_final[ali]
    if is_reordered(tm, ali):
        # after a final transition, the following self-loops still belong to the phone
        not_loop = ~tm.is_self_loop[ali]
        idx = np.where(not_loop, np.arange(n), n)
        # next non-self-loop index strictly after i
        nxt = np.minimum.accumulate(idx[::-1])[::-1]
        nxt_after = np.concatenate([nxt[1:], [n]])
        ends = nxt_after[np.nonzero(final)[0]]
    else:
        ends = np.nonzero(final)[0] + 1
    phone = tm.tid2phone[ali]
    tstate = tm.tid2tstate[ali]
    changed = np.nonzero((tstate[:-1] != tstate[1:]) & (phone[:-1] != phone[1:]) & ~final[:-1])[0] + 1
    ends = np.unique(np.concatenate([ends, changed, [n]]))
    starts = np.concatenate([[0], ends[:-1]])
    return phone[starts].astype(np.int32), (ends - starts).astype(np.int32)


def ali_to_phones(tm: TransitionModel, ali: np.ndarray, per_frame: bool = False, utt: str = "?") -> np.ndarray:
    """Kaldi ``ali-to-phones``: the phone sequence, or one phone per frame with ``per_frame``."""
    phones, lengths = split_to_phones(tm, ali, utt)
    return np.repeat(phones, lengths) if per_frame else phones


def reorder_alignment(tm: TransitionModel, ali: np.ndarray) -> np.ndarray:
    """Non-reordered (self-loops, then the forward transition, per HMM-state visit) →
    Kaldi's reordered form (forward transition first, then the self-loops)."""
    ali = np.asarray(ali, dtype=np.int32).copy()
    ends = np.nonzero(~tm.is_self_loop[ali])[0]
    starts = np.concatenate([[0], ends[:-1] + 1])
    first = ali[starts].copy()
    ali[starts] = ali[ends]
    ali[ends] = first
    return ali
