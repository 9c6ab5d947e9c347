"""Is one system better than another on a test set? Two standard answers.

- **Bootstrap** (Bisani & Ney 2004, Kaldi ``compute-wer-bootci``): utterances are drawn
  with replacement ``replications`` times; each replication's WER is its summed errors over
  its summed reference words. Reported: each system's WER with the 2.5–97.5 percentile
  interval of the replications, the same for the difference WER(1) − WER(2) (both systems
  scored on the same draws: a paired test), and the probability that system 2 improves
  system 1 (the share of draws where it makes fewer errors). Kaldi's binary prints the
  replications' mean ± 1.96 standard deviations instead of the observed WER and percentile
  interval; the two agree closely on test sets of hundreds of utterances.
- **MAPSSWE** (Gillick & Cox 1989, NIST sclite ``sc_stats -t mapsswe``): both hypotheses
  are aligned to the reference as sclite aligns (``asr.score.align``, rule ``sclite``);
  segments are the stretches where at least one system errs, bounded by ``min_good`` (2)
  words both got right; Z = mean / (std / √n) of the per-segment error differences,
  two-sided p from the normal distribution. The segmentation is sclite's state machine
  (``mtchprs.c``), so segment counts and Z equal ``sc_stats``'s (tested against it).

Per-utterance errors use Kaldi's alignment (as ``compute-wer``); reference utterances
without a hypothesis are an error (``mode="strict"``), count as empty (``mode="all"``), or
are left out of both systems (``mode="present"``), as ``compute-wer --mode``.

Example::

    ref, h1, h2 = read_text("data/test/text"), read_text("exp/a/hyp.txt"), read_text("exp/b/hyp.txt")
    c = compare(ref, h1, h2)
    c.diff_ci        # (low, high) of WER(1) - WER(2) in %
    c.mapsswe.p      # two-sided p of the matched-pairs test
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asr.errors import FormatError

DEFAULT_REPLICATIONS = 10_000
MIN_GOOD = 2  # sclite's default minimum number of correct boundary words


@dataclass(frozen=True)
class Mapsswe:
    segments: int
    mean: float  # mean of errors(1) - errors(2) per segment
    std: float
    z: float
    p: float  # two-sided

    @property
    def significant(self) -> bool:
        return self.p < 0.05


@dataclass(frozen=True)
class SystemCI:
    errors: int
    words: int
    wer: float  # %
    ci: tuple[float, float]  # 95 % bootstrap interval, %


@dataclass(frozen=True)
class Comparison:
    utterances: int
    sys1: SystemCI
    sys2: SystemCI | None
    diff: float | None = None  # WER(1) - WER(2), %
    diff_ci: tuple[float, float] | None = None
    p_improve: float | None = None  # P(system 2 makes fewer errors than system 1) over the draws
    mapsswe: Mapsswe | None = None
    replications: int = DEFAULT_REPLICATIONS

    def lines(self, names: tuple[str, str] = ("Set1", "Set2")) -> list[str]:
        """The report, in Kaldi compute-wer-bootci's wording for the shared lines."""
        out = [_system_line(names[0], self.sys1)]
        if self.sys2 is None:
            return out
        out.append(_system_line(names[1], self.sys2))
        out.append(f"Difference {names[0]} - {names[1]}: %WER {self.diff:.2f} 95% Conf Interval "
                   f"[ {self.diff_ci[0]:.2f}, {self.diff_ci[1]:.2f} ] ({self.sys1.errors - self.sys2.errors:+d} errors)")
        out.append(f"Probability of {names[1]} improving {names[0]}: {100 * self.p_improve:.2f}")
        m = self.mapsswe
        out.append(f"MAPSSWE: {m.segments} segments, mean {m.mean:.3f} std dev {m.std:.3f} errors per segment, "
                   f"Z {m.z:.3f}, p {m.p:.4f}: " + ("significant" if m.significant else "not significant")
                   + " at the 0.05 level")
        return out


def _system_line(name: str, s: SystemCI) -> str:
    return (f"{name}: %WER {s.wer:.2f} 95% Conf Interval [ {s.ci[0]:.2f}, {s.ci[1]:.2f} ] "
            f"({s.errors} / {s.words})")


def compare(ref: dict[str, list[str]], hyp1: dict[str, list[str]], hyp2: dict[str, list[str]] | None = None,
            replications: int = DEFAULT_REPLICATIONS, seed: int = 0, mode: str = "all",
            min_good: int = MIN_GOOD, ref_name: str = "ref", hyp_names: tuple[str, str] | None = None) -> Comparison:
    """Bootstrap intervals of one or two systems and, with two, their paired comparison.
    Hypotheses are matched to the reference as ``compute-wer`` does (``asr.score.wer.
    match_utterances``, ``mode`` strict/present/all; errors and warnings name ``hyp_names``)."""
    from asr.score.align import counts_many

    from asr.score.wer import match_utterances

    if replications < 100:
        raise FormatError(f"at least 100 replications are needed, got {replications}")
    hyps = [h for h in (hyp1, hyp2) if h is not None]
    names = list(hyp_names or ("hyp", "hyp2"))
    scored = [set(match_utterances(ref, h, mode, ref_name, n)) for h, n in zip(hyps, names)]
    utts = [u for u in ref if all(u in s for s in scored)]  # present: left out of both systems
    if not utts:
        raise FormatError("no utterance to score")
    words = np.array([len(ref[u]) for u in utts], dtype=np.int64)
    errors = [np.array([c.errors for c in counts_many([(ref[u], h.get(u, [])) for u in utts])], dtype=np.int64)
              for h in hyps]
    rng = np.random.default_rng(seed)
    draws = _bootstrap(rng, words, errors, replications)
    systems = [SystemCI(int(e.sum()), int(words.sum()), _pct(e.sum(), words.sum()), _interval(100.0 * d / draws[0]))
               for e, d in zip(errors, draws[1:])]
    if hyp2 is None:
        return Comparison(len(utts), systems[0], None, replications=replications)
    diff_draws = 100.0 * (draws[1] - draws[2]) / draws[0]
    return Comparison(
        len(utts), systems[0], systems[1],
        diff=systems[0].wer - systems[1].wer, diff_ci=_interval(diff_draws),
        p_improve=float(np.mean(draws[1] > draws[2])),
        mapsswe=mapsswe(ref, hyp1, hyp2, utts, min_good), replications=replications,
    )


def _bootstrap(rng: np.random.Generator, words: np.ndarray, errors: list[np.ndarray], replications: int,
               chunk: int = 1000) -> list[np.ndarray]:
    """Summed words and summed errors of each system over ``replications`` draws of
    ``len(words)`` utterances with replacement (the same draws for every system)."""
    n = len(words)
    out = [np.empty(replications, dtype=np.int64) for _ in range(1 + len(errors))]
    for start in range(0, replications, chunk):
        stop = min(start + chunk, replications)
        idx = rng.integers(0, n, size=(stop - start, n))
        for arr, values in zip(out, [words] + errors):
            arr[start:stop] = values[idx].sum(axis=1)
    if np.any(out[0] == 0):
        raise FormatError("the reference has no words to score")
    return out


def _interval(x: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(x, [2.5, 97.5])
    return float(lo), float(hi)


def _pct(num, den) -> float:
    return 100.0 * float(num) / float(den) if den else 0.0


def mapsswe(ref: dict[str, list[str]], hyp1: dict[str, list[str]], hyp2: dict[str, list[str]],
            utts: list[str] | None = None, min_good: int = MIN_GOOD) -> Mapsswe:
    """sclite's matched-pairs sentence-segment word error test (see module doc)."""
    from asr.score.align import align_many

    utts = list(ref) if utts is None else utts
    fold = lambda ws: [w.lower() for w in ws]  # noqa: E731  (sclite is case-insensitive)
    ops = [[[op for _, _, op in steps] for steps in align_many([(fold(ref[u]), fold(h.get(u, []))) for u in utts],
                                                                 "sclite")] for h in (hyp1, hyp2)]
    diffs: list[int] = []
    for a, b in zip(*ops):
        diffs.extend(e1 - e2 for e1, e2 in _segments(a, b, min_good))
    n = len(diffs)
    if n == 0:
        return Mapsswe(0, 0.0, 0.0, 0.0, 1.0)
    d = np.array(diffs, dtype=np.float64)
    mean = float(d.mean())
    var = float(((d - mean) ** 2).sum() / (n - 1)) if n > 1 else 0.0
    if var == 0.0:  # sclite: no spread, Z = 0
        return Mapsswe(n, mean, 0.0, 0.0, 1.0)
    std = math.sqrt(var)
    z = mean / (std / math.sqrt(n))
    return Mapsswe(n, mean, std, z, math.erfc(abs(z) / math.sqrt(2.0)))


def _segments(a: list[str], b: list[str], min_good: int) -> list[tuple[int, int]]:
    """(errors of 1, errors of 2) per segment of one utterance: sclite's ``test_comp_sents``
    on the two alignments (ops C/S/D/I), reference words in step with each other."""
    out: list[tuple[int, int]] = []
    i = j = 0
    eog1 = eog2 = 0
    state, good = "b", 0

    def count(ops: list[str], frm: int, to: int) -> int:
        return sum(op != "C" for op in ops[max(frm, 0):to + 1])

    def store(e1: int, e2: int, t1: int, t2: int) -> None:
        c1, c2 = count(a, e1 - (min_good - 1), t1), count(b, e2 - (min_good - 1), t2)
        if c1 or c2:  # sclite ignores a segment without errors
            out.append((c1, c2))

    while i < len(a):
        while i < len(a) and a[i] == "I":
            i, state = i + 1, "e"
        while j < len(b) and b[j] == "I":
            j, state = j + 1, "e"
        both = i < len(a) and j < len(b) and a[i] == "C" and b[j] == "C"
        if state == "b":
            if both:
                eog1, eog2 = i, j
            else:
                state = "e"
        elif both:  # state "e" or "g": count correct words towards the boundary
            good = 1 if state == "e" else good + 1
            if good == min_good:
                store(eog1, eog2, i, j)
                eog1, eog2, state = i, j, "b"
            else:
                state = "g"
        elif state == "g":
            state = "e"
        if i < len(a):
            i += 1
        if j < len(b):
            j += 1
    if state != "b" or len(b) > j:
        store(eog1, eog2, len(a) - 1, len(b) - 1)
    return out
