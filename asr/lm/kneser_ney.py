"""Interpolated modified Kneser-Ney estimation (Chen & Goodman 1998), vectorised with numpy.

For each order k the model uses *adjusted* counts a(h, w):

- the highest order: raw counts c(h, w);
- lower orders: continuation counts N1+(. h w), the number of distinct words seen before
  ``h w``; n-grams that start with ``<s>`` keep their raw count (nothing can precede <s>).
- ``<s>`` is never predicted (its unigram gets log-probability -99, as in ARPA files).

Three discounts per order from that order's counts-of-counts n1..n4 of adjusted counts::

    Y = n1 / (n1 + 2 n2);  D1 = 1 - 2Y n2/n1;  D2 = 2 - 3Y n3/n2;  D3+ = 3 - 4Y n4/n3

and the interpolated estimate (h' = h without its oldest word)::

    p(w | h) = (a(h,w) - D(a)) / sum_v a(h,v)  +  gamma(h) p(w | h')
    gamma(h) = (D1 N1(h) + D2 N2(h) + D3+ N3+(h)) / sum_v a(h,v)

where N_i(h) is the number of words with adjusted count i (3+: >= 3) after h. Unigrams
interpolate with the uniform distribution over the vocabulary without <s>, so vocabulary
words never seen in the text get gamma/|V|. The ARPA back-off weight of h is gamma(h), which
makes every context's distribution sum to 1 exactly.

**Discount fallback.** When a discount is undefined (some n_i = 0) or outside its valid
range (0 < D1 < 1, 0 < D2 < 2, 0 < D3+ < 3) — which happens on small or synthetic corpora —
the order falls back, with a warning, to a single absolute discount D = Y = n1/(n1 + 2 n2)
for all three when 0 < Y < 1, and otherwise to the constants D1, D2, D3+ = 0.5, 1.0, 1.5.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from asr.errors import LMError
from asr.lm.counting import NgramCounts
from asr.lm.ngram_lm import BOS, LOG10_ZERO, NgramLM

logger = logging.getLogger(__name__)

FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


@dataclass
class Discounts:
    d1: float
    d2: float
    d3: float
    rule: str  # "modified" | "absolute" | "constant"

    def of(self, a: np.ndarray) -> np.ndarray:
        """Discount for each adjusted count (0 for count 0)."""
        return np.select([a == 1, a == 2, a >= 3], [self.d1, self.d2, self.d3], 0.0)


def compute_discounts(adjusted: np.ndarray, order: int, count_of_counts=None) -> Discounts:
    """Chen & Goodman's D1, D2, D3+ from counts-of-counts (of ``adjusted``, or the given
    n1..n4), with the documented fallback."""
    if count_of_counts is not None:
        n = [int(x) for x in count_of_counts]
    else:
        a = adjusted[adjusted > 0]
        n = [int(np.count_nonzero(a == i)) for i in range(1, 5)]
    n1, n2, n3, n4 = n
    if n1 > 0 and n2 > 0 and n3 > 0 and n4 > 0:
        y = n1 / (n1 + 2 * n2)
        d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
        if 0 < d[0] < 1 and 0 < d[1] < 2 and 0 < d[2] < 3:
            return Discounts(*d, "modified")
        why = f"D1={d[0]:.4g}, D2={d[1]:.4g}, D3+={d[2]:.4g} out of range"
    else:
        why = f"counts-of-counts n1..n4={n}"
    if n1 > 0 and n2 > 0:
        y = n1 / (n1 + 2 * n2)
        if 0 < y < 1:
            logger.warning("order %d: modified KN discounts invalid (%s); using absolute discount D=%.4g", order, why, y)
            return Discounts(y, y, y, "absolute")
    logger.warning("order %d: KN discounts invalid (%s); using constants D1,D2,D3+=%s", order, why, FALLBACK_DISCOUNTS)
    return Discounts(*FALLBACK_DISCOUNTS, "constant")


def adjusted_counts(counts: NgramCounts) -> list[np.ndarray]:
    """KN adjusted counts per order (see module docstring)."""
    N = counts.order
    V = len(counts.words)
    bos = counts.words.index(BOS)
    starts_bos = [counts.word[0] == bos]
    for k in range(2, N + 1):
        starts_bos.append(starts_bos[k - 2][counts.prefix[k - 1]])
    adj = []
    for k in range(1, N + 1):
        if k == N:
            a = counts.count[k - 1].copy()
        else:
            if counts.continuation is not None and counts.continuation[k - 1] is not None:
                cont = counts.continuation[k - 1]  # counted before the higher order's cutoff
            else:
                cont = np.bincount(counts.suffix[k], minlength=len(counts.count[k - 1])).astype(np.int64)
            a = np.where(starts_bos[k - 1], counts.count[k - 1], cont)
        adj.append(a)
    adj[0] = adj[0].copy()
    adj[0][bos] = 0
    assert len(adj[0]) == V
    return adj


def estimate_kneser_ney(counts: NgramCounts) -> tuple[NgramLM, list[Discounts]]:
    """Estimate an interpolated modified KN model from counts. Returns (lm, discounts per order)."""
    N = counts.order
    V = len(counts.words)
    bos = counts.words.index(BOS)
    adj = adjusted_counts(counts)
    discounts = []
    probs: list[np.ndarray] = []
    backoffs: list[np.ndarray] = []
    # unigrams: interpolate with uniform over the vocabulary without <s>
    a = adj[0].astype(np.float64)
    total = a.sum()
    if total <= 0:
        raise LMError("no n-grams to estimate from (empty text?)")
    coc = counts.count_of_counts or [None] * N
    disc = compute_discounts(adj[0], 1, coc[0])
    discounts.append(disc)
    d = disc.of(adj[0])
    gamma0 = d.sum() / total
    p = np.maximum(a - d, 0.0) / total + gamma0 / (V - 1)
    p[bos] = 0.0
    probs.append(p)
    for k in range(2, N + 1):
        a_int = adj[k - 1]
        a = a_int.astype(np.float64)
        pref = counts.prefix[k - 1]
        n_ctx = len(counts.count[k - 2])
        disc = compute_discounts(a_int, k, coc[k - 1])
        discounts.append(disc)
        d = disc.of(a_int)
        tot = np.bincount(pref, weights=a, minlength=n_ctx)
        dsum = np.bincount(pref, weights=d, minlength=n_ctx)
        has = tot > 0
        gamma = np.ones(n_ctx)
        gamma[has] = dsum[has] / tot[has]
        lower = probs[k - 2][counts.suffix[k - 1]]
        probs.append((a - d) / tot[pref] + gamma[pref] * lower)
        bo = np.zeros(n_ctx)
        bo[has] = np.log10(gamma[has])
        backoffs.append(bo)
    backoffs.append(np.zeros(len(probs[-1])))
    with np.errstate(divide="ignore"):
        logprobs = [np.log10(p) for p in probs]
    logprobs[0][bos] = LOG10_ZERO
    for k, (lp, dsc) in enumerate(zip(logprobs, discounts), 1):
        logger.info("order %d: %d n-grams, discounts D1=%.4f D2=%.4f D3+=%.4f (%s)", k, len(lp), dsc.d1, dsc.d2, dsc.d3, dsc.rule)
    lm = NgramLM(counts.words, counts.prefix, counts.word, logprobs, backoffs)
    return lm, discounts
