"""make-lm as a library call: text -> counts -> modified Kneser-Ney -> optional pruning."""

from __future__ import annotations

import logging
import os
from typing import Sequence

from asr.errors import LMError
from asr.lm.counting import read_vocab
from asr.lm.external_counts import DEFAULT_CHUNK_WORDS, count_text
from asr.lm.kneser_ney import estimate_kneser_ney
from asr.lm.ngram_lm import UNK, NgramLM
from asr.lm.pruning import prune_by_count, prune_entropy

logger = logging.getLogger(__name__)


def make_lm(
    text: str | os.PathLike,
    order: int = 5,
    vocab: str | os.PathLike | None = None,
    prune: float | None = None,
    target_ngrams: int | None = None,
    min_counts: Sequence[int] = (),
    unk: str = UNK,
    chunk_words: int = DEFAULT_CHUNK_WORDS,
    tmp_dir: str | os.PathLike | None = None,
) -> NgramLM:
    """Estimate an interpolated modified-KN model of ``order`` from ``text`` (one sentence a line).

    ``vocab``: word list or Kaldi words.txt (closed vocabulary; other words -> ``unk``).
    ``min_counts``: raw-count cutoffs for orders 2, 3, ... (last value repeats).
    ``chunk_words``: a text with more words is counted in chunks through sorted runs on disk
    (in ``tmp_dir``; :mod:`asr.lm.external_counts`), and ``min_counts`` is then applied while
    merging, before estimation (in memory it is applied to the estimated model).
    ``prune`` / ``target_ngrams``: SRILM-style relative-entropy pruning afterwards, with the
    context probabilities taken from the training counts (see :func:`asr.lm.pruning.prune_entropy`).
    """
    if order < 1:
        raise LMError(f"--order must be >= 1, got {order}")
    if prune is not None and target_ngrams is not None:
        raise LMError("give at most one of prune threshold and target n-grams")
    words = read_vocab(vocab, unk) if vocab is not None else None
    counts, stats = count_text(text, order, words, unk, chunk_words, tmp_dir, min_counts)
    logger.info("%s: %d sentences, %d words, %d OOVs (mapped to %s), vocabulary %d, %d chunk(s)",
                text, stats["sentences"], stats["words"], stats["oov"], unk, len(counts.words), stats["chunks"])
    if stats["skipped_lines"]:
        logger.info("%s: skipped %d empty lines", text, stats["skipped_lines"])
    _warn_if_too_big(sum(counts.num_ngrams()))
    lm, _ = estimate_kneser_ney(counts)
    if min_counts and stats["chunks"] == 1:
        lm = prune_by_count(lm, counts.count, list(min_counts))
        logger.info("after count cutoffs %s: n-grams per order %s", list(min_counts), lm.num_ngrams())
    if prune is not None or target_ngrams is not None:
        # context probabilities P(h) from the training counts (SRILM -prune-history-lm role)
        lm, _ = prune_entropy(lm, threshold=prune, target_ngrams=target_ngrams, history=counts)
    return lm


BYTES_PER_NGRAM_PEAK = 190  # estimation + ARPA writing, measured (docs/lm.md, "Large texts")


def _warn_if_too_big(num_ngrams: int) -> None:
    """Warn before estimating a model whose projected peak memory exceeds what is available."""
    try:
        with open("/proc/meminfo") as f:
            avail = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return
    need = num_ngrams * BYTES_PER_NGRAM_PEAK
    if need > avail:
        logger.warning("%d n-grams: estimating and writing them needs about %.1f GiB, %.1f GiB are available; "
                       "raise --min-counts (see docs/lm.md, Large texts)", num_ngrams, need / 2**30, avail / 2**30)
