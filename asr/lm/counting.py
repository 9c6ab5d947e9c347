"""N-gram counting: text -> word ids -> sorted n-gram count tables (numpy, hash/sort based).

Pipeline:

1. :func:`read_vocab` reads a closed vocabulary (a plain word list, or a Kaldi ``words.txt``
   ``word id`` table: the first column is used, ``<eps>`` and ``#N`` disambiguation symbols are
   dropped). ``<s>``, ``</s>`` and the OOV symbol (``<unk>``) are always in the vocabulary.
2. :func:`read_corpus` streams the text (one sentence per line) into one int32 array of word
   ids with ``<s>``/``</s>`` around every sentence. With a vocabulary, other words become
   ``<unk>`` (counted and reported); without one, the vocabulary is every word seen.
3. :func:`count_ngrams` counts every order in turn. An order-k n-gram at corpus position p
   is encoded as ``key = row_{k-1}(p) * V + token[p + k - 1]``, where ``row_{k-1}(p)`` is the
   row of the (k-1)-gram at p in the sorted table of order k-1. Keys are counted chunk by
   chunk (``np.unique`` with inverse) and the chunks merged by sorting, so the sort workspace
   is bounded by the chunk size. Memory is O(tokens + distinct n-grams): about 30-40 bytes
   per token while counting (int32 ids, row arrays, positions) plus 32 bytes per distinct
   n-gram for the tables (5 M tokens, 5-gram, 10 M n-grams: 0.9 GiB peak RSS, see
   bench/lm_speed.py). The sorted unique keys are the table: ``prefix = key // V`` is the row
   of the first k-1 words and ``word = key % V`` the last word (the same layout as
   :class:`asr.lm.ngram_lm.NgramLM`).
   The suffix row of every n-gram (its last k-1 words) comes from the position p + 1.
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
DEFAULT_CHUNK = 1 << 22  # positions per counting chunk (4 M)


def read_vocab(path: str | os.PathLike, unk: str = UNK) -> list[str]:
    """Word list (plain, or Kaldi words.txt) -> vocabulary with </s>, <s>, ``unk`` first."""
    path = Path(path)
    words: list[str] = [EOS, BOS, unk]
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
    if len(words) == 3:
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


def read_corpus(text: str | os.PathLike, vocab: list[str] | None = None, unk: str = UNK) -> Corpus:
    """Stream a text file (one sentence per line) into a :class:`Corpus`.

    ``vocab``: closed vocabulary (from :func:`read_vocab`); words outside it map to ``unk``
    (default ``<unk>``; e.g. ``<UNK>`` for a LibriSpeech-style lexicon).
    Without it, the vocabulary is </s>, <s>, ``unk`` and then every word in order of first use.
    Literal ``<s>``/``</s>`` tokens in the text are dropped (they are added around each line).
    """
    text = Path(text)
    closed = vocab is not None
    unk_symbol = unk
    words = list(vocab) if closed else [EOS, BOS, unk_symbol]
    index = {w: i for i, w in enumerate(words)}
    missing = [w for w in (EOS, BOS, unk_symbol) if w not in index]
    if missing:
        raise LMError(f"vocabulary lacks {' '.join(missing)}")
    unk = index[unk_symbol]
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
                    text, oov, corpus.num_words, len(oov_words), unk_symbol)
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
    # Set by counting in chunks with cutoffs (asr.lm.external_counts), None otherwise:
    # continuation[k-1]: distinct left contexts of each order-k n-gram, counted before the
    # order k+1 cutoff; count_of_counts[k-1]: n1..n4 to take the order-k discounts from.
    continuation: list | None = None
    count_of_counts: list | None = None

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
    for k in tqdm(range(2, order + 1), desc="counting", leave=False, disable=T < 5_000_000):
        starts = np.flatnonzero(rem >= k)
        # each chunk: its unique keys, counts and the local index of every position's key
        parts = []
        for c0 in range(0, len(starts), chunk):
            p = starts[c0:c0 + chunk]
            key = row_prev[p].astype(np.int64) * V + tok[p + (k - 1)]
            u, inv, c = np.unique(key, return_inverse=True, return_counts=True)
            parts.append((u, inv.astype(np.int32), c))
            del key
        if len(parts) == 1:
            keys, inv, n = parts[0]
            rows = inv
        elif parts:
            keys = np.sort(np.concatenate([u for u, _, _ in parts]))
            keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]  # sort-based (np.unique may hash: slow)
            n = np.zeros(len(keys), np.int64)
            rows = np.empty(len(starts), np.int64 if len(keys) >= 2**31 else np.int32)
            c0 = 0
            for u, inv, c in parts:
                idx = np.searchsorted(keys, u)  # sorted queries: cache friendly
                n[idx] += c
                rows[c0:c0 + len(inv)] = idx[inv]
                c0 += len(inv)
        else:
            keys, n, rows = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32)
        del parts
        # suffix (the n-gram without its first word) of the k-gram at p starts at p + 1
        suffix = np.zeros(len(keys), np.int64)
        suffix[rows] = row_prev[starts + 1]
        if k < order:
            row = np.full(T, -1, dtype=rows.dtype)
            row[starts] = rows
            row_prev = row
        del rows, starts
        prefix = keys // V
        counts.prefix.append(prefix)
        counts.word.append(keys - prefix * V)
        counts.count.append(n.astype(np.int64))
        counts.suffix.append(suffix)
    return counts
