"""Word alignment of a reference and a hypothesis by weighted edit distance.

Three tie-breaking rules, each exactly as its tool does it:

``kaldi``       Kaldi ``compute-wer`` (``LevenshteinEditDistance``): unit costs; at each
                cell substitution/match only if strictly cheaper than both insertion and
                deletion, else deletion if strictly cheaper than insertion, else insertion.
``align-text``  Kaldi ``align-text`` (``LevenshteinAlignment``, used for per-utterance
                details): unit costs; substitution/match on ties, then deletion over
                insertion.
``sclite``      NIST sclite (SCTK ``net_dp.c``, ``wwd_WORD``): costs match 0, substitution
                4, insertion 3, deletion 3; substitution/match when <= both, else deletion
                if strictly cheaper than insertion, else insertion. sclite compares words
                case-insensitively unless run with ``-s``: pass folded words for that.

The cost table is filled one reference word (row) at a time with numpy: within a row the
insertion recurrence ``D[r, h] = min(T[h], D[r, h-1] + ins)`` is a running minimum,
``minimum.accumulate(T - ins*h) + ins*h``. The trace-back walks the chosen predecessors
(length ref + hyp at most).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

RULES = ("kaldi", "align-text", "sclite")

# (insertion, deletion, substitution) costs per rule
_COSTS = {"kaldi": (1, 1, 1), "align-text": (1, 1, 1), "sclite": (3, 3, 4)}


@dataclass(frozen=True)
class Counts:
    """Edit counts of one alignment (or a sum of them)."""

    cor: int = 0
    sub: int = 0
    ins: int = 0
    dele: int = 0

    @property
    def errors(self) -> int:
        return self.sub + self.ins + self.dele

    @property
    def ref_words(self) -> int:
        return self.cor + self.sub + self.dele

    def __add__(self, o: "Counts") -> "Counts":
        return Counts(self.cor + o.cor, self.sub + o.sub, self.ins + o.ins, self.dele + o.dele)


# an alignment step: (ref word or None, hyp word or None, op) with op in "C", "S", "I", "D"
Step = tuple


def cost_table(ref_ids: np.ndarray, hyp_ids: np.ndarray, ins: int, dele: int, sub: int) -> np.ndarray:
    """Edit-distance table ``D[r, h]`` (int64, shape (len(ref)+1, len(hyp)+1))."""
    R, H = len(ref_ids), len(hyp_ids)
    ramp = np.arange(H + 1, dtype=np.int64) * ins
    D = np.empty((R + 1, H + 1), np.int64)
    D[0] = ramp
    if R == 0:
        return D
    subcost = np.where(ref_ids[:, None] == hyp_ids[None, :], 0, sub).astype(np.int64)
    tmp = np.empty(H + 1, np.int64)
    for r in range(1, R + 1):
        prev = D[r - 1]
        tmp[0] = prev[0] + dele
        np.minimum(prev[1:] + dele, prev[:-1] + subcost[r - 1], out=tmp[1:])
        D[r] = np.minimum.accumulate(tmp - ramp) + ramp
    return D


def align(ref: Sequence[str], hyp: Sequence[str], rule: str = "kaldi") -> list[Step]:
    """Align two word sequences; returns steps ``(ref_word|None, hyp_word|None, op)``."""
    if rule not in _COSTS:
        raise ValueError(f"unknown alignment rule {rule!r} (one of {RULES})")
    ins, dele, sub = _COSTS[rule]
    vocab: dict[str, int] = {}
    ref_ids = np.fromiter((vocab.setdefault(w, len(vocab)) for w in ref), np.int64, len(ref))
    hyp_ids = np.fromiter((vocab.setdefault(w, len(vocab)) for w in hyp), np.int64, len(hyp))
    D = cost_table(ref_ids, hyp_ids, ins, dele, sub).tolist()
    r, h = len(ref), len(hyp)
    steps: list[Step] = []
    ref_l, hyp_l = ref_ids.tolist(), hyp_ids.tolist()
    while r > 0 or h > 0:
        if r == 0:
            move = "I"
        elif h == 0:
            move = "D"
        else:
            same = ref_l[r - 1] == hyp_l[h - 1]
            c_sub = D[r - 1][h - 1] + (0 if same else sub)
            c_del = D[r - 1][h] + dele
            c_ins = D[r][h - 1] + ins
            if rule == "kaldi":
                take_sub = c_sub < c_ins and c_sub < c_del
            else:
                take_sub = c_sub <= c_del and c_sub <= c_ins
            if take_sub:
                move = "C" if same else "S"
            elif c_del < c_ins or (rule == "align-text" and c_del == c_ins):
                move = "D"
            else:
                move = "I"
        if move == "I":
            steps.append((None, hyp[h - 1], "I"))
            h -= 1
        elif move == "D":
            steps.append((ref[r - 1], None, "D"))
            r -= 1
        else:
            steps.append((ref[r - 1], hyp[h - 1], move))
            r -= 1
            h -= 1
    steps.reverse()
    return steps


def count(steps: Sequence[Step]) -> Counts:
    """Counts of C/S/I/D in an alignment."""
    ops = [s[2] for s in steps]
    return Counts(ops.count("C"), ops.count("S"), ops.count("I"), ops.count("D"))


def edit_counts(ref: Sequence[str], hyp: Sequence[str], rule: str = "kaldi") -> Counts:
    """Counts of the alignment of ``ref`` and ``hyp`` under ``rule``."""
    return count(align(ref, hyp, rule))
