"""make-lm as a library call: text -> counts -> modified Kneser-Ney -> optional pruning."""

from __future__ import annotations

import logging
import os
from typing import Sequence

from asr.errors import LMError
from asr.lm.counting import count_ngrams, read_corpus, read_vocab
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
) -> NgramLM:
    """Estimate an interpolated modified-KN model of ``order`` from ``text`` (one sentence a line).

    ``vocab``: word list or Kaldi words.txt (closed vocabulary; other words -> ``unk``).
    ``min_counts``: raw-count cutoffs for orders 2, 3, ... (last value repeats).
    ``prune`` / ``target_ngrams``: SRILM-style relative-entropy pruning afterwards, with the
    context probabilities taken from the training counts (see :func:`asr.lm.pruning.prune_entropy`).
    """
    if order < 1:
        raise LMError(f"--order must be >= 1, got {order}")
    if prune is not None and target_ngrams is not None:
        raise LMError("give at most one of prune threshold and target n-grams")
    words = read_vocab(vocab, unk) if vocab is not None else None
    corpus = read_corpus(text, words, unk)
    logger.info("%s: %d sentences, %d words, %d OOVs (mapped to %s), vocabulary %d",
                text, corpus.num_sentences, corpus.num_words, corpus.num_oov, unk, len(corpus.words))
    counts = count_ngrams(corpus, order)
    del corpus
    lm, _ = estimate_kneser_ney(counts)
    if min_counts:
        lm = prune_by_count(lm, counts.count, list(min_counts))
        logger.info("after count cutoffs %s: n-grams per order %s", list(min_counts), lm.num_ngrams())
    if prune is not None or target_ngrams is not None:
        # context probabilities P(h) from the training counts (SRILM -prune-history-lm role)
        lm, _ = prune_entropy(lm, threshold=prune, target_ngrams=target_ngrams, history=counts)
    return lm
