"""Pruning a back-off model: count cutoffs, Stolcke relative-entropy pruning, target size.

Relative-entropy pruning follows SRILM's ``ngram -prune THRESHOLD`` (Stolcke 1998, SRILM
``Ngram::pruneProbs``): for every n-gram (h, w) of order >= ``minorder`` (default 2, so
unigrams are kept), with p = p(w|h), p' = p(w|h') the lower-order estimate,
num(h) = 1 - sum_{v seen after h} p(v|h), den(h) = 1 - sum_v p(v|h') and P(h) the
probability of the context (the product of its words' conditional probabilities, with a
leading ``<s>`` scored as ``</s>``, as SRILM does)::

    bow'(h)  = (num(h) + p) / (den(h) + p')                     # back-off weight without (h, w)
    dH       = -P(h) [ p (log p' + log bow'(h) - log p) + num(h) (log bow'(h) - log bow(h)) ]
    pruned  <=>  10^dH - 1 < THRESHOLD                           # relative perplexity change

P(h) may instead come from a "history" model, as SRILM's ``-prune-history-lm``: here the
relative frequencies c(h)/N of a text's counts. ``make-lm --prune`` uses the training counts
(Kneser-Ney lower orders are continuation distributions, poor estimates of P(h); with them,
entropy pruning of a KN model loses to plain count cutoffs, Chelba et al. 2010).

(log10 throughout). Every n-gram is judged against the unpruned model, as SRILM does; an
n-gram that is the context of a surviving longer n-gram is never pruned. After pruning, the
back-off weights are recomputed so that each context's distribution sums to 1:
bow(h) = (1 - sum_seen p(w|h)) / (1 - sum_seen p(w|h')), lowest order first.

With the per-n-gram scores fixed, the number of surviving n-grams is a monotone step
function of the threshold, so ``target_ngrams`` is met exactly by sorting the scores (the
threshold returned is the smallest that leaves at most that many n-grams, all orders).

Count cutoffs drop n-grams of order k >= 2 whose raw training count is below ``min_counts``
(again keeping contexts of surviving n-grams), then recompute back-off weights.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from asr.errors import LMError
from asr.lm.counting import NgramCounts
from asr.lm.ngram_lm import LOG10_ZERO, NgramLM

logger = logging.getLogger(__name__)


def prune_entropy(
    lm: NgramLM,
    threshold: float | None = None,
    target_ngrams: int | None = None,
    minorder: int = 2,
    history: NgramCounts | None = None,
) -> tuple[NgramLM, float]:
    """Relative-entropy pruning by ``threshold`` or to ``target_ngrams`` n-grams (all orders).

    ``history``: n-gram counts of a text (normally the training text) that give the context
    probabilities P(h) as relative frequencies, instead of the model's own P(h) — the role of
    SRILM's ``-prune-history-lm``. Kneser-Ney lower orders are continuation distributions and
    make poor context marginals (Chelba et al. 2010), so this prunes KN models much better.
    Contexts the text lacks fall back to the model's P(h). Returns (pruned model, threshold).
    """
    if (threshold is None) == (target_ngrams is None):
        raise LMError("give exactly one of threshold and target_ngrams")
    minorder = max(2, minorder)
    scores = relative_entropy_scores(lm, minorder, history)
    eff = _closure(lm, scores)
    if target_ngrams is not None:
        threshold = threshold_for_target(lm, eff, target_ngrams)
    if threshold <= 0:
        return lm, float(threshold)  # SRILM: threshold 0 prunes nothing
    keep = [e >= threshold for e in eff]
    pruned = subset(lm, keep)
    before, after = lm.num_ngrams(), pruned.num_ngrams()
    logger.info("entropy pruning at threshold %.6g: n-grams per order %s -> %s (%d -> %d)",
                threshold, before, after, sum(before), sum(after))
    return pruned, float(threshold)


def prune_by_count(lm: NgramLM, raw_counts: Sequence[np.ndarray], min_counts: Sequence[int]) -> NgramLM:
    """Drop n-grams of order k >= 2 with raw count < min_counts[k - 2] (last value repeats)."""
    if not min_counts:
        return lm
    keep = [np.ones(len(lm.keys[0]), dtype=bool)]
    for k in range(2, lm.order + 1):
        m = min_counts[min(k - 2, len(min_counts) - 1)]
        keep.append(np.asarray(raw_counts[k - 1]) >= m)
    return subset(lm, _close_prefixes(lm, keep))


def relative_entropy_scores(lm: NgramLM, minorder: int = 2, history: NgramCounts | None = None) -> list[np.ndarray]:
    """Per-row relative perplexity change 10^dH - 1 of removing it (+inf: never pruned, -inf: blank).

    ``history``: counts giving empirical context probabilities (see :func:`prune_entropy`).
    """
    scores = [np.full(len(lm.keys[0]), np.inf)]
    for k in range(2, lm.order + 1):
        lp = lm.logprobs[k - 1]
        n = len(lp)
        if k < minorder or n == 0:
            scores.append(np.full(n, np.inf))
            continue
        real = ~np.isnan(lp)
        pref = lm.prefix[k - 1]
        n_ctx = len(lm.keys[k - 2])
        lower = lm._lower_logprob(k)
        p = np.where(real, 10.0 ** np.where(real, lp, 0.0), 0.0)
        plow = np.where(real, 10.0 ** lower, 0.0)
        num = 1.0 - np.bincount(pref, weights=p, minlength=n_ctx)
        den = 1.0 - np.bincount(pref, weights=plow, minlength=n_ctx)
        num[(num < 0) & (num > -1e-6)] = 0.0
        den[(den < 0) & (den > -1e-6)] = 0.0
        ctx_ok = (num >= 0) & (den >= 0)
        bow = lm.backoffs[k - 2]
        cprob = _context_logprob(lm, k - 1)
        if history is not None:
            cprob = _empirical_context_logprob(lm, k - 1, history, cprob)
        nh, dh = num[pref], den[pref]
        with np.errstate(divide="ignore", invalid="ignore"):
            new_bow = np.log10(nh + p) - np.log10(dh + plow)
            delta_prob = lower + new_bow - np.where(real, lp, 0.0)
            dH = -(10.0 ** cprob[pref]) * (p * delta_prob + nh * (new_bow - bow[pref]))
            sc = 10.0 ** dH - 1.0
        sc = np.where(ctx_ok[pref] & np.isfinite(sc), sc, np.inf)
        sc[~real] = -np.inf
        scores.append(sc)
    return scores


def threshold_for_target(lm: NgramLM, eff: list[np.ndarray], target: int) -> float:
    """Smallest threshold leaving at most ``target`` n-grams (unigrams always stay)."""
    fixed = sum(int(np.count_nonzero(np.isposinf(e) & ~np.isnan(lp))) for e, lp in zip(eff, lm.logprobs))
    prunable = np.concatenate([e[np.isfinite(e) & ~np.isnan(lp)] for e, lp in zip(eff, lm.logprobs)])
    room = target - fixed
    if room < 0:
        logger.warning("target of %d n-grams is below the %d that cannot be pruned; pruning all others", target, fixed)
        room = 0
    if room >= len(prunable):
        return 0.0  # nothing to prune
    desc = np.sort(prunable)[::-1]
    # keep exactly those with score > desc[room]
    return float(max(np.nextafter(desc[room], np.inf), np.finfo(float).tiny))


def subset(lm: NgramLM, keep: Sequence[np.ndarray]) -> NgramLM:
    """Model with only the kept rows (made prefix-closed), back-off weights recomputed."""
    keep = _close_prefixes(lm, [np.asarray(k, dtype=bool) for k in keep])
    keep[0] = np.ones(len(lm.keys[0]), dtype=bool)
    prefix, word, lps, bos = [], [], [], []
    new_index = None
    for k in range(1, lm.order + 1):
        kp = keep[k - 1]
        pre = lm.prefix[k - 1][kp]
        if k > 1:
            pre = new_index[pre]
        prefix.append(pre)
        word.append(lm.word[k - 1][kp])
        lps.append(lm.logprobs[k - 1][kp])
        bos.append(lm.backoffs[k - 1][kp].copy())
        new_index = np.cumsum(kp) - 1
    out = NgramLM(lm.words, prefix, word, lps, bos)
    recompute_backoffs(out)
    return out


def recompute_backoffs(lm: NgramLM) -> None:
    """Set every context's back-off weight so its distribution sums to 1 (in place, low orders first)."""
    for k in range(2, lm.order + 1):
        lp = lm.logprobs[k - 1]
        real = ~np.isnan(lp)
        pref = lm.prefix[k - 1][real]
        n_ctx = len(lm.keys[k - 2])
        lower = lm._lower_logprob(k)[real]
        num = 1.0 - np.bincount(pref, weights=10.0 ** lp[real], minlength=n_ctx)
        den = 1.0 - np.bincount(pref, weights=10.0 ** lower, minlength=n_ctx)
        has = np.bincount(pref, minlength=n_ctx) > 0
        bad = has & ((den <= 1e-12) | (num <= 0))
        if bad.any():
            logger.warning("order %d: %d contexts leave no probability mass to back off (back-off weight set to %s)",
                           k, int(bad.sum()), LOG10_ZERO)
        bo = np.zeros(n_ctx)
        ok = has & ~bad
        bo[ok] = np.log10(num[ok]) - np.log10(den[ok])
        bo[bad & (num <= 0)] = LOG10_ZERO
        lm.backoffs[k - 2] = bo
        lm.clear_cache()
    lm.backoffs[-1] = np.zeros(len(lm.keys[-1]))


# ---------------------------------------------------------------------- helpers
def _close_prefixes(lm: NgramLM, keep: list[np.ndarray]) -> list[np.ndarray]:
    """Also keep every row that is the prefix of a kept row of the next order (top-down)."""
    keep = [k.copy() for k in keep]
    for k in range(lm.order, 1, -1):
        keep[k - 2][lm.prefix[k - 1][keep[k - 1]]] = True
    return keep


def _closure(lm: NgramLM, scores: list[np.ndarray]) -> list[np.ndarray]:
    """Effective score: max of the row's own score and its children's effective scores."""
    eff = [s.copy() for s in scores]
    for k in range(lm.order, 1, -1):
        np.maximum.at(eff[k - 2], lm.prefix[k - 1], eff[k - 1])
    return eff


def _empirical_context_logprob(lm: NgramLM, k: int, counts: NgramCounts, fallback: np.ndarray) -> np.ndarray:
    """log10 c(h) / N for the order-k rows h of lm, N = predicted tokens (all but <s>)."""
    if counts.words[:len(lm.words)] != lm.words:
        raise LMError("history counts must use the LM's vocabulary (count the text with vocab=lm.words)")
    if k > counts.order:
        return fallback
    bos = lm.bos
    total = counts.count[0].sum() - (counts.count[0][bos] if bos >= 0 else 0)
    rows = lookup_rows(counts.keys, len(counts.words), lm.ngram_words(k))
    c = np.where(rows >= 0, counts.count[k - 1][np.maximum(rows, 0)], 0)
    out = fallback.copy()
    seen = c > 0
    out[seen] = np.log10(c[seen] / total)
    return out


def lookup_rows(keys: Sequence[np.ndarray], V: int, ngrams: np.ndarray) -> np.ndarray:
    """Rows of the n-grams (word-id matrix [n, k]) in sorted per-order key tables, -1 if absent."""
    n, k = ngrams.shape
    row = ngrams[:, 0].astype(np.int64)
    row = np.where(row < len(keys[0]), row, -1)
    for j in range(1, k):
        table = keys[j]
        q = row * V + ngrams[:, j]
        pos = np.minimum(np.searchsorted(table, q), max(len(table) - 1, 0))
        hit = (row >= 0) & (len(table) > 0) & (table[pos] == q) if len(table) else np.zeros(n, bool)
        row = np.where(hit, pos, -1)
    return row


def _context_logprob(lm: NgramLM, k: int) -> np.ndarray:
    """log10 P(h) for every order-k row h (SRILM computeContextProb: leading <s> scored as </s>)."""
    M = lm.ngram_words(k)
    first = M[:, 0].copy()
    if lm.bos >= 0 and lm.eos >= 0:
        first[first == lm.bos] = lm.eos
    total = lm.logprobs[0][first].copy()
    for j in range(1, k):
        total += lm.logprob_batch(M[:, j], M[:, :j])
    return total


__all__ = [
    "prune_entropy", "prune_by_count", "relative_entropy_scores", "threshold_for_target",
    "subset", "recompute_backoffs", "lookup_rows",
]
