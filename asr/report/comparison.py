"""Honest comparisons of a recipe's systems: paired significance per test set and seed, and
which claims hold across seeds and test sets.

Systems trained with another seed are named ``<system>_s<seed>`` (``lstmp_s2``; no suffix =
seed 1). For every test set and seed, every pair of systems is compared on the same
utterances (``asr.score.significance.compare``: bootstrap interval of the WER difference,
probability of improvement, sclite's MAPSSWE). A difference is *significant* when the
MAPSSWE p < 0.05 **and** the 95 % interval of the difference excludes 0.

The claims table takes, for every pair, the direction seen with the first seed on the
first test set ("A better than B") and says for every (test set, seed) whether it holds:
``holds`` (same direction, significant), ``same sign, n.s.``, ``reversed`` (opposite
direction, significant), ``reversed, n.s.``, ``tie``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asr.report.results import best_hyp
from asr.score.significance import Comparison

_SEED = re.compile(r"^(?P<system>.+?)_s(?P<seed>\d+)$")


def system_and_seed(name: str) -> tuple[str, int]:
    """``lstmp_s2`` -> ("lstmp", 2); ``lstmp`` -> ("lstmp", 1)."""
    m = _SEED.match(name)
    return (m.group("system"), int(m.group("seed"))) if m else (name, 1)


@dataclass(frozen=True)
class Pair:
    test_set: str
    seed: int
    a: str  # system names without the seed suffix
    b: str
    result: Comparison

    @property
    def significant(self) -> bool:
        lo, hi = self.result.diff_ci
        return self.result.mapsswe.significant and (lo > 0 or hi < 0)

    @property
    def better(self) -> str | None:
        """The system with fewer errors (None on a tie)."""
        d = self.result.sys1.errors - self.result.sys2.errors
        return None if d == 0 else (self.b if d > 0 else self.a)


def pairwise(entries: list[dict[str, Any]], test_sets: dict[str, str], replications: int = 10_000) -> list[Pair]:
    """Every pair of systems of the same seed on every test set that both decoded."""
    from asr.score.significance import compare
    from asr.score.wer import read_text

    by_seed: dict[int, list[tuple[str, dict]]] = {}
    for e in entries:
        system, seed = system_and_seed(e["name"])
        by_seed.setdefault(seed, []).append((system, e))
    out = []
    for ts, data_dir in test_sets.items():
        text = Path(data_dir) / "text"
        if not text.is_file():
            continue
        ref = read_text(text)
        for seed in sorted(by_seed):
            for (a, ea), (b, eb) in itertools.combinations(by_seed[seed], 2):
                ha, hb = best_hyp(ea["exp_dir"], ts), best_hyp(eb["exp_dir"], ts)
                if ha is None or hb is None:
                    continue
                c = compare(ref, read_text(ha), read_text(hb), replications=replications)
                out.append(Pair(ts, seed, a, b, c))
    return out


def significance_table(pairs: list[Pair]) -> str:
    lines = ["| test set | seed | A vs B | WER A | WER B | A − B [95% CI] | P(B better) | MAPSSWE p | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in pairs:
        c = p.result
        verdict = "no significant difference"
        if p.significant:
            verdict = f"{p.better} better"
        lines.append(
            f"| {p.test_set} | {p.seed} | {p.a} vs {p.b} | {c.sys1.wer:.2f} ({c.sys1.errors}) | "
            f"{c.sys2.wer:.2f} ({c.sys2.errors}) | {c.diff:+.2f} [{c.diff_ci[0]:+.2f}, {c.diff_ci[1]:+.2f}] | "
            f"{100 * c.p_improve:.1f} % | {c.mapsswe.p:.3g} | {verdict} |")
    return "\n".join(lines) + "\n"


def claims_table(pairs: list[Pair]) -> str:
    """Rows: the claim of each pair (from the first seed on the first test set); columns:
    every (test set, seed)."""
    if not pairs:
        return ""
    cells = sorted({(p.test_set, p.seed) for p in pairs}, key=lambda k: (_order(pairs, k[0]), k[1]))
    first_set, first_seed = cells[0]
    rows = []
    for p in pairs:
        if (p.test_set, p.seed) != (first_set, first_seed):
            continue
        winner = p.better or p.a
        loser = p.b if winner == p.a else p.a
        row = [f"{winner} better than {loser}"]
        for ts, seed in cells:
            q = next((x for x in pairs if (x.test_set, x.seed, {x.a, x.b}) == (ts, seed, {p.a, p.b})), None)
            row.append(_verdict(q, winner))
        rows.append(row)
    head = ["claim (seed %d, %s)" % (first_seed, first_set)] + [f"{ts}, seed {seed}" for ts, seed in cells]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _order(pairs: list[Pair], test_set: str) -> int:
    return [p.test_set for p in pairs].index(test_set)


def _verdict(q: Pair | None, winner: str) -> str:
    if q is None:
        return "n/a"
    if q.better is None:
        return "tie"
    same = q.better == winner
    if q.significant:
        return "holds" if same else "reversed"
    return "same sign, n.s." if same else "reversed, n.s."
