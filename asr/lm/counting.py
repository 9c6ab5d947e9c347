"""N-gram counting: text -> word ids -> sorted n-gram count tables (numpy, hash/sort based).

Pipeline:

1. :func:`read_vocab` reads a closed vocabulary (a plain word list, or a Kaldi ``words.txt``
   ``word id`` table: the first column is used, ``<eps>`` and ``#N`` disambiguation symbols are
   dropped). ``<s>``, ``</s>`` and ``<unk>`` are always in the vocabulary.
2. :func:`read_corpus` streams the text (one sentence per line) into one int32 array of word
   ids with ``<s>``/``</s>`` around every sentence. With a vocabulary, other words become
   ``<unk>`` (counted and reported); without one, the vocabulary is every word seen.
3. :func:`count_ngrams` counts every order in turn. An order-k n-gram at corpus position p
   is encoded as ``key = row_{k-1}(p) * V + token[p + k - 1]``, where ``row_{k-1}(p)`` is the
   row of the (k-1)-gram at p in the sorted table of order k-1. Keys are counted chunk by
   chunk with ``np.unique`` and merged, so peak memory is a few arrays of one chunk plus
   ~12 bytes per token (the ids and two row arrays), whatever the corpus size. The sorted
   unique keys are the table: ``prefix = key // V`` is the row of the first k-1 words and
   ``word = key % V`` the last word (the same layout as :class:`asr.lm.ngram_lm.NgramLM`).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.errors import LMError
from asr.lm.ngram_lm import BOS, EOS, UNK

logger = logging.getLogger(__name__)

_DISAMBIG = re.compile(r"^#\d+$")
_SPECIAL = (EOS, BOS, UNK)
DEFAULT_CHUNK = 1 << 22  # positions per counting chunk (4 M)


def read_vocab(path: str | os.PathLike) -> list[str]:
    """Word list (plain, or Kaldi words.txt) -> vocabulary with </s>, <s>, <unk> first."""
    path = Path(path)
    words: list[str] = list(_SPECIAL)
    seen = set(words)
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                w = parts[0]
                if len(parts) > 2 or (len(parts) == 2 and not parts[1].lstrip("-").isdigit()):
                    raise LMError(f"{path}:{lineno}: expected 'word' or 'word id', got {line.strip()!r}")
                if w == "<eps>" or _DISAMBIG.match(w) or w in seen:
                    continue
                seen.add(w)
                words.append(w)
    except OSError as e:
        raise LMError(f"{path}: cannot read vocabulary: {e}") from e
    if len(words) == len(_SPECIAL):
        raise LMError(f"{path}: vocabulary has no words")
    return words


@dataclass
class Corpus:
    """Word ids of a text with <s>/</s> around each sentence."""

    words: list[str]  # id -> word
    tokens: np.ndarray  # int32 [T], all sentences concatenated, each as <s> w ... </s>
    sentence_starts: np.ndarray  # int64 [S + 1], start of each sentence in tokens; last = T
    num_sentences: int = 0
    num_words: int = 0  # words in the text (without <s>, </s>)
    num_oov: int = 0  # words mapped to <unk>
    skipped_lines: int = 0  # empty lines
    oov_types: int = 0

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)


def read_corpus(text: str | os.PathLike, vocab: list[str] | None = None, batch_lines: int = 100_000) -> Corpus:
    """Stream a text file (one sentence per line) into a :class:`Corpus`.

    ``vocab``: closed vocabulary (from :func:`read_vocab`); words outside it map to <unk>.
    Without it, the vocabulary is </s>, <s>, <unk> and then every word in order of first use.
    Literal ``<s>``/``</s>`` tokens in the text are dropped (they are added around each line).
    """
    text = Path(text)
    closed = vocab is not None
    words = list(vocab) if closed else list(_SPECIAL)
    index = {w: i for i, w in enumerate(words)}
    unk = index[UNK]
    bos, eos = index[BOS], index[EOS]
    chunks: list[np.ndarray] = []
    lengths: list[int] = []
    oov = 0
    oov_words: set[str] = set()
    skipped = 0
    dropped_markers = 0
    buf: list[int] = []
    try:
        f = open(text, encoding="utf-8")
    except OSError as e:
        raise LMError(f"{text}: cannot read text: {e}") from e
    size = os.path.getsize(text)
    with f, tqdm(total=size, unit="B", unit_scale=True, desc=f"reading {text.name}", leave=False,
                 disable=size < 50_000_000) as bar:
        nread = 0
        for line in f:
            nread += len(line)
            toks = line.split()
            if not toks:
                skipped += 1
                continue
            if BOS in toks or EOS in toks:
                n0 = len(toks)
                toks = [t for t in toks if t != BOS and t != EOS]
                dropped_markers += n0 - len(toks)
            if closed:
                ids = [index.get(t, -1) for t in toks]
                if -1 in ids:
                    for t, i in zip(toks, ids):
                        if i == -1:
                            oov += 1
                            oov_words.add(t)
                    ids = [unk if i == -1 else i for i in ids]
            else:
                ids = [index.setdefault(t, len(index)) for t in toks]
            buf.extend(ids)
            lengths.append(len(ids))
            if len(buf) >= 1_000_000:
                chunks.append(np.array(buf, dtype=np.int32))
                buf = []
                bar.update(nread)
                nread = 0
        bar.update(nread)
    if buf:
        chunks.append(np.array(buf, dtype=np.int32))
    if not closed:
        words = list(index)
    if dropped_markers:
        logger.warning("%s: dropped %d literal <s>/</s> tokens (sentence markers are added per line)", text, dropped_markers)
    flat = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
    del chunks
    lens = np.array(lengths, dtype=np.int64)
    S = len(lens)
    if S == 0:
        raise LMError(f"{text}: no sentences (empty text)")
    sent_len = lens + 2
    starts = np.zeros(S + 1, np.int64)
    np.cumsum(sent_len, out=starts[1:])
    T = int(starts[-1])
    tokens = np.empty(T, np.int32)
    is_word = np.ones(T, dtype=bool)
    is_word[starts[:-1]] = False
    is_word[starts[1:] - 1] = False
    tokens[is_word] = flat
    tokens[starts[:-1]] = bos
    tokens[starts[1:] - 1] = eos
    corpus = Corpus(words, tokens, starts, S, int(lens.sum()), oov, skipped, len(oov_words))
    if oov:
        logger.info("%s: %d of %d words (%d types) not in the vocabulary, mapped to %s",
                    text, oov, corpus.num_words, len(oov_words), UNK)
    if skipped:
        logger.info("%s: skipped %d empty lines", text, skipped)
    return corpus


@dataclass
class NgramCounts:
    """Sorted n-gram tables per order (index k-1), layout as NgramLM.

    Order 1 has one row per vocabulary word (row = word id). ``suffix[k-1][r]`` is the row in
    order k-1 of the n-gram without its first word (order 1: unused zeros).
    """

    words: list[str]
    order: int
    prefix: list[np.ndarray] = field(default_factory=list)
    word: list[np.ndarray] = field(default_factory=list)
    count: list[np.ndarray] = field(default_factory=list)
    suffix: list[np.ndarray] = field(default_factory=list)

    @property
    def keys(self) -> list[np.ndarray]:
        V = len(self.words)
        return [p * V + w for p, w in zip(self.prefix, self.word)]

    def num_ngrams(self) -> list[int]:
        return [len(c) for c in self.count]


def count_ngrams(corpus: Corpus, order: int, chunk: int = DEFAULT_CHUNK) -> NgramCounts:
    """Count all n-grams of orders 1..order that lie within a sentence (with <s>, </s>)."""
    if order < 1:
        raise LMError(f"order must be >= 1, got {order}")
    V = len(corpus.words)
    tok = corpus.tokens
    T = len(tok)
    # tokens left in the sentence from each position (incl. itself): k-gram at p iff rem[p] >= k
    sent_len = np.diff(corpus.sentence_starts)
    rem = (np.repeat(corpus.sentence_starts[1:], sent_len) - np.arange(T)).astype(np.int32)
    counts = NgramCounts(list(corpus.words), order)
    counts.prefix.append(np.zeros(V, np.int64))
    counts.word.append(np.arange(V, dtype=np.int64))
    counts.count.append(np.bincount(tok, minlength=V).astype(np.int64))
    counts.suffix.append(np.zeros(V, np.int64))
    row_prev = tok  # row of the (k-1)-gram starting at each position (order 1: the word id)
    dtype = np.int32
    for k in tqdm(range(2, order + 1), desc="counting", leave=False, disable=T < 5_000_000):
        starts = np.flatnonzero(rem >= k)
        # pass 1: unique keys and counts, chunk by chunk, then merged
        uniq, cnt = [], []
        for c0 in range(0, len(starts), chunk):
            p = starts[c0:c0 + chunk]
            key = row_prev[p].astype(np.int64) * V + tok[p + (k - 1)]
            u, c = np.unique(key, return_counts=True)
            uniq.append(u)
            cnt.append(c)
        if len(uniq) == 1:
            keys, n = uniq[0], cnt[0].astype(np.int64)
        elif uniq:
            allk = np.concatenate(uniq)
            keys, inv = np.unique(allk, return_inverse=True)
            n = np.bincount(inv, weights=np.concatenate(cnt), minlength=len(keys)).astype(np.int64)
            del allk, inv
        else:
            keys, n = np.zeros(0, np.int64), np.zeros(0, np.int64)
        del uniq, cnt
        # pass 2: row of every position's k-gram (needed for order k+1)
        if k < order:
            if len(keys) >= np.iinfo(np.int32).max:
                dtype = np.int64
            row = np.full(T, -1, dtype=dtype)
            for c0 in range(0, len(starts), chunk):
                p = starts[c0:c0 + chunk]
                key = row_prev[p].astype(np.int64) * V + tok[p + (k - 1)]
                row[p] = np.searchsorted(keys, key)
            row_prev = row
        prefix = keys // V
        word = keys - prefix * V
        counts.prefix.append(prefix)
        counts.word.append(word)
        counts.count.append(n)
        counts.suffix.append(_suffix_rows(counts, k))
        del starts
    return counts


def _suffix_rows(counts: NgramCounts, k: int) -> np.ndarray:
    """Rows in order k-1 of each order-k n-gram without its first word (all exist in counts)."""
    word = counts.word[k - 1]
    if k == 2:
        return word.copy()
    V = len(counts.words)
    prefix_suffix = counts.suffix[k - 2][counts.prefix[k - 1]]  # row (order k-2) of prefix minus first word
    q = prefix_suffix * V + word
    keys_lower = counts.prefix[k - 2] * V + counts.word[k - 2]
    rows = np.searchsorted(keys_lower, q)
    if len(rows) and (rows.max() >= len(keys_lower) or not np.array_equal(keys_lower[rows], q)):
        raise LMError(f"internal error: an order-{k} n-gram has no order-{k - 1} suffix")
    return rows
