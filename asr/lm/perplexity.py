"""Perplexity of a text under an NgramLM, reported as SRILM's ``ngram -ppl`` does.

Every sentence is scored as ``<s> w1 ... wn </s>`` (``</s>`` included, ``<s>`` not).
Words outside the model's vocabulary are OOVs: counted and excluded from the log-probability
(with ``map_unk=True`` they are scored as ``<unk>`` instead, like SRILM's ``-unk``). In the
history an OOV word stands as ``<unk>`` when the model has it. Words with probability zero
(log10 <= -99, e.g. a literal ``<s>`` inside a sentence) are zeroprobs, also excluded.

    ppl  = 10^(-logprob / (words - OOVs - zeroprobs + sentences))
    ppl1 = 10^(-logprob / (words - OOVs - zeroprobs))

The text is scored in batches with :meth:`NgramLM.logprob_batch` (vectorised).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.errors import LMError
from asr.lm.ngram_lm import EOS, LOG10_ZERO, NgramLM


@dataclass
class PerplexityResult:
    file: str
    sentences: int
    words: int
    oovs: int
    zeroprobs: int
    logprob: float

    @property
    def ppl(self) -> float:
        n = self.words - self.oovs - self.zeroprobs + self.sentences
        return 10.0 ** (-self.logprob / n) if n > 0 else float("nan")

    @property
    def ppl1(self) -> float:
        n = self.words - self.oovs - self.zeroprobs
        return 10.0 ** (-self.logprob / n) if n > 0 else float("nan")

    def srilm_lines(self) -> str:
        """The two lines SRILM's ``ngram -ppl`` prints."""
        return (
            f"file {self.file}: {self.sentences} sentences, {self.words} words, {self.oovs} OOVs\n"
            f"{self.zeroprobs} zeroprobs, logprob= {_g(self.logprob)} ppl= {_g(self.ppl)} ppl1= {_g(self.ppl1)}"
        )


def _g(x: float) -> str:
    if math.isnan(x):
        return "undefined"
    if math.isinf(x):
        return "inf"
    return f"{x:.6g}"


def perplexity(lm: NgramLM, text: str | os.PathLike, map_unk: bool = False, batch_sentences: int = 20000) -> PerplexityResult:
    """Score a text file (one sentence per line; empty lines skipped)."""
    text = Path(text)
    res = PerplexityResult(str(text), 0, 0, 0, 0, 0.0)
    batch: list[list[str]] = []
    try:
        f = open(text, encoding="utf-8")
    except OSError as e:
        raise LMError(f"{text}: cannot read text: {e}") from e
    with f:
        for line in f:
            toks = line.split()
            if toks:
                batch.append(toks)
            if len(batch) >= batch_sentences:
                _score_batch(lm, batch, res, map_unk)
                batch = []
    if batch:
        _score_batch(lm, batch, res, map_unk)
    return res


def score_sentences(lm: NgramLM, sentences: list[list[str]], map_unk: bool = False) -> PerplexityResult:
    """Like :func:`perplexity` for sentences given as lists of words."""
    res = PerplexityResult("-", 0, 0, 0, 0, 0.0)
    _score_batch(lm, sentences, res, map_unk)
    return res


def _score_batch(lm: NgramLM, sentences: list[list[str]], res: PerplexityResult, map_unk: bool) -> None:
    vocab = lm.vocab
    unk = lm.unk
    if lm.eos < 0:
        raise LMError(f"the LM has no {EOS}")
    if map_unk and unk < 0:
        raise LMError("map_unk needs an LM with <unk>")
    H = lm.order - 1
    ids: list[int] = []
    lens = []
    for toks in sentences:
        ids.extend(vocab.get(t, -1) for t in toks)
        ids.append(lm.eos)
        lens.append(len(toks) + 1)
    w = np.array(ids, dtype=np.int64)
    lens_a = np.array(lens, dtype=np.int64)
    oov = w < 0
    if unk >= 0:
        oov |= w == unk
        w_hist = np.where(w < 0, unk, w)
    else:
        w_hist = w
    # history matrix: previous H tokens within the sentence, <s> before the first word, -1 before that
    n = len(w)
    starts = np.repeat(np.cumsum(lens_a) - lens_a, lens_a)
    pos = np.arange(n) - starts  # position in sentence (0 = first word)
    hist = np.full((n, H), -1, dtype=np.int64)
    for j in range(1, H + 1):  # column H - j holds the word j steps back
        back = pos - j
        src = np.arange(n) - j
        col = np.full(n, -1, dtype=np.int64)
        inside = back >= 0
        col[inside] = w_hist[src[inside]]
        col[back == -1] = lm.bos
        hist[:, H - j] = col
    if map_unk:
        score_w = w_hist
        excluded = np.zeros(n, dtype=bool)
    else:
        score_w = np.where(oov, 0, w)
        excluded = oov
    lp = lm.logprob_batch(score_w, hist) if H > 0 else lm.logprobs[0][score_w]
    zero = ~excluded & (lp <= LOG10_ZERO / 2)
    res.sentences += len(sentences)
    res.words += n - len(sentences)
    res.oovs += int(np.count_nonzero(excluded))
    res.zeroprobs += int(np.count_nonzero(zero))
    res.logprob += float(lp[~excluded & ~zero].sum())


__all__ = ["PerplexityResult", "perplexity", "score_sentences"]
