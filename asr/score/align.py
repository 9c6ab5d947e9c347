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

The cost table is filled one reference word (row) at a time with numpy, for a padded
batch of utterances at once: within a row the insertion recurrence
``D[r, h] = min(T[h], D[r, h-1] + ins)`` is a running minimum,
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
    return cost_tables(ref_ids[None, :], hyp_ids[None, :], ins, dele, sub)[0]


def cost_tables(refs: np.ndarray, hyps: np.ndarray, ins: int, dele: int, sub: int) -> np.ndarray:
    """Edit-distance tables of a batch: ``refs`` [B, R] and ``hyps`` [B, H] (padded with
    ids that match nothing; padding never influences the cells of the real prefix).
    Returns int64 [B, R+1, H+1]; one numpy step per reference position for the batch."""
    B, R = refs.shape
    H = hyps.shape[1]
    ramp = np.arange(H + 1, dtype=np.int64) * ins
    D = np.empty((B, R + 1, H + 1), np.int64)
    D[:, 0] = ramp
    tmp = np.empty((B, H + 1), np.int64)
    for r in range(1, R + 1):
        prev = D[:, r - 1]
        subcost = np.where(refs[:, r - 1:r] == hyps, 0, sub)
        tmp[:, 0] = prev[:, 0] + dele
        np.minimum(prev[:, 1:] + dele, prev[:, :-1] + subcost, out=tmp[:, 1:])
        D[:, r] = np.minimum.accumulate(tmp - ramp, axis=1) + ramp
    return D


def align(ref: Sequence[str], hyp: Sequence[str], rule: str = "kaldi") -> list[Step]:
    """Align two word sequences; returns steps ``(ref_word|None, hyp_word|None, op)``."""
    return align_many([(ref, hyp)], rule)[0]


def align_many(pairs: Sequence[tuple[Sequence[str], Sequence[str]]], rule: str = "kaldi") -> list[list[Step]]:
    """``align`` for many (ref, hyp) pairs."""
    out = []
    for (ref, hyp), ops in zip(pairs, _moves(pairs, rule)):
        steps: list[Step] = []
        i = j = 0
        for op in ops:
            if op == "I":
                steps.append((None, hyp[j], op))
                j += 1
            elif op == "D":
                steps.append((ref[i], None, op))
                i += 1
            else:
                steps.append((ref[i], hyp[j], op))
                i += 1
                j += 1
        out.append(steps)
    return out


def counts_many(pairs: Sequence[tuple[Sequence[str], Sequence[str]]], rule: str = "kaldi") -> list[Counts]:
    """Edit counts of many (ref, hyp) pairs (no word lists built)."""
    return [Counts(ops.count("C"), ops.count("S"), ops.count("I"), ops.count("D")) for ops in _moves(pairs, rule)]


_OPS = np.array(["", "C", "S", "I", "D"])


def _batches(order: list[int], ids, max_batch: int, max_cells: int):
    """Consecutive groups of ``order`` with at most ``max_batch`` pairs and padded cost
    tables of at most ``max_cells`` cells (a single long pair may exceed it alone)."""
    group: list[int] = []
    R = H = 0
    for i in order:
        r, h = len(ids[i][0]), len(ids[i][1])
        R2, H2 = max(R, r), max(H, h)
        if group and (len(group) >= max_batch or (len(group) + 1) * (R2 + 1) * (H2 + 1) > max_cells):
            yield group
            group, R2, H2 = [], r, h
        group.append(i)
        R, H = R2, H2
    if group:
        yield group


def _moves(pairs, rule: str, max_batch: int = 512, max_cells: int = 4_000_000) -> list[str]:
    """Alignment operations of every pair as a string over C/S/I/D, in order. Pairs of
    similar lengths are aligned together: cost tables and trace-backs are batched numpy
    (tables of at most ``max_cells`` int64 cells per batch)."""
    if rule not in _COSTS:
        raise ValueError(f"unknown alignment rule {rule!r} (one of {RULES})")
    ins, dele, sub = _COSTS[rule]
    vocab: dict[str, int] = {}
    ids = [([vocab.setdefault(w, len(vocab)) for w in r], [vocab.setdefault(w, len(vocab)) for w in h])
           for r, h in pairs]
    out = [""] * len(pairs)
    by_len = sorted(range(len(pairs)), key=lambda i: (len(ids[i][0]), len(ids[i][1])))
    for members in _batches(by_len, ids, max_batch, max_cells):
        lr = np.array([len(ids[i][0]) for i in members], np.int64)
        lh = np.array([len(ids[i][1]) for i in members], np.int64)
        R, H = int(lr.max()), int(lh.max())
        refs = np.full((len(members), R), -1, np.int64)
        hyps = np.full((len(members), H), -2, np.int64)
        for k, i in enumerate(members):
            refs[k, :lr[k]] = ids[i][0]
            hyps[k, :lh[k]] = ids[i][1]
        D = cost_tables(refs, hyps, ins, dele, sub)
        moves = _trace_back(D, refs, hyps, lr, lh, rule, ins, dele, sub)
        for k, i in enumerate(members):
            out[i] = "".join(_OPS[moves[k][::-1]].tolist())
    return out


def _trace_back(D, refs, hyps, lr, lh, rule, ins, dele, sub) -> np.ndarray:
    """Operation codes (1 C, 2 S, 3 I, 4 D, 0 padding) from the end backwards, [B, R+H];
    all pairs of the batch step back together."""
    B = len(lr)
    b = np.arange(B)
    r, h = lr.copy(), lh.copy()
    refs = np.concatenate([np.full((B, 1), -3, np.int64), refs], axis=1)  # 1-based
    hyps = np.concatenate([np.full((B, 1), -4, np.int64), hyps], axis=1)
    moves = np.zeros((B, int((lr + lh).max()) if B else 0), np.int64)
    for t in range(moves.shape[1]):
        active = (r > 0) | (h > 0)
        if not active.any():
            break
        r1, h1 = np.maximum(r - 1, 0), np.maximum(h - 1, 0)
        same = refs[b, r] == hyps[b, h]
        c_sub = D[b, r1, h1] + np.where(same, 0, sub)
        c_del = D[b, r1, h] + dele
        c_ins = D[b, r, h1] + ins
        if rule == "kaldi":
            take_sub = (c_sub < c_ins) & (c_sub < c_del)
        else:
            take_sub = (c_sub <= c_del) & (c_sub <= c_ins)
        take_del = (c_del < c_ins) | ((c_del == c_ins) if rule == "align-text" else False)
        move = np.where(take_sub, np.where(same, 1, 2), np.where(take_del, 4, 3))
        move = np.where(r == 0, 3, np.where(h == 0, 4, move))
        move[~active] = 0
        moves[:, t] = move
        r -= (move == 1) | (move == 2) | (move == 4)
        h -= (move == 1) | (move == 2) | (move == 3)
    return moves


def count(steps: Sequence[Step]) -> Counts:
    """Counts of C/S/I/D in an alignment."""
    ops = [s[2] for s in steps]
    return Counts(ops.count("C"), ops.count("S"), ops.count("I"), ops.count("D"))


def edit_counts(ref: Sequence[str], hyp: Sequence[str], rule: str = "kaldi") -> Counts:
    """Counts of the alignment of ``ref`` and ``hyp`` under ``rule``."""
    return count(align(ref, hyp, rule))
