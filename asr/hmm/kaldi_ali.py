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
