"""A back-off n-gram language model held as sorted numpy arrays (a prefix trie).

Layout (``k`` = 1..order, index ``k - 1`` in the per-order lists):

- order 1: row ``i`` is the word with id ``i`` (``lm.words[i]``); every vocabulary word has a
  unigram row (``<s>`` has log-probability -99, as in ARPA files).
- order ``k > 1``: row ``r`` is the n-gram ``(prefix n-gram, word)``, where ``prefix[k-1][r]``
  is the row of its first ``k - 1`` words in order ``k - 1`` and ``word[k-1][r]`` its last
  word. ``keys[k-1] = prefix * V + word`` (int64) is strictly increasing, so rows are in
  lexicographic order of word ids and a lookup is a dict hit or a ``searchsorted``.
- ``logprobs[k-1]``: log10 p(word | prefix words). NaN marks a *blank* row, an n-gram that is
  present only because it is the context (prefix) of a longer n-gram (some pruned ARPA files
  lack such contexts); a blank row has no probability of its own, only a backoff weight.
- ``backoffs[k-1]``: log10 back-off weight of the row as a context (0 when it has none).

Every n-gram's prefix is a row of the order below (prefix-closed), which makes the state
reduction below exact.

Lookup API (for perplexity and lattice rescoring):

- ``logprob(word, history)``: log10 p(word | history) with exact back-off
  (history is a tuple of words, oldest first; only the last ``order - 1`` matter).
- ``score_sentence(words)``: sum over the words and ``</s>`` with ``<s>`` as first history.
- ``word_id(word)``: id, with words outside the vocabulary mapped to ``<unk>`` (or ``<UNK>``)
  when the model has it (else :class:`asr.errors.LMError`).
- State API, as Kaldi's ``lmrescore-const-arpa`` uses it: ``context_state(history_ids)``
  maps a history (tuple of word ids) to its longest suffix that exists as an n-gram in the
  model. ``p(w | history) == p(w | context_state(history))`` exactly, so states can be
  merged. ``score_ids(state, word_id) -> (log10 prob, next state)`` scores one word and
  returns the reduced state after it (memoised in a dict, so repeated lattice arcs are a
  single dict hit). ``start_state()`` is the state after ``<s>``.
- ``logprob_batch(word_ids, histories)``: vectorised log10 probabilities for many
  (history, word) pairs at once (histories as an int array padded on the left with -1).
- ``score_batch(states, word_ids)``: vectorised ``score_ids`` (probabilities and next states);
  ``find_rows_batch(ngrams)``: rows of many n-grams at once (-1 where absent).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from asr.errors import LMError


BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"
UNK_SYMBOLS = (UNK, "<UNK>")  # recognised as the LM's unknown-word symbol, in this order
LOG10_ZERO = -99.0  # ARPA's "probability zero" (used for <s>)


class NgramLM:
    """Back-off n-gram LM (log10). See the module docstring for layout and lookup API."""

    def __init__(
        self,
        words: Sequence[str],
        prefix: list[np.ndarray],
        word: list[np.ndarray],
        logprob: list[np.ndarray],
        backoff: list[np.ndarray],
    ):
        self.words: list[str] = list(words)
        self.vocab: dict[str, int] = {w: i for i, w in enumerate(self.words)}
        if len(self.vocab) != len(self.words):
            raise LMError("duplicate words in the vocabulary")
        self.order = len(logprob)
        if self.order < 1:
            raise LMError("an n-gram model needs at least unigrams")
        V = len(self.words)
        self.prefix = [np.asarray(p, dtype=np.int64) for p in prefix]
        self.word = [np.asarray(w, dtype=np.int64) for w in word]
        self.logprobs = [np.asarray(x, dtype=np.float64) for x in logprob]
        self.backoffs = [np.asarray(x, dtype=np.float64) for x in backoff]
        self.keys = [p * V + w for p, w in zip(self.prefix, self.word)]
        if len(self.logprobs[0]) != V:
            raise LMError(f"unigram table has {len(self.logprobs[0])} rows for {V} words")
        for k, key in enumerate(self.keys):
            if len(key) > 1 and not np.all(key[1:] > key[:-1]):
                raise LMError(f"order {k + 1} keys are not strictly increasing")
        self.bos = self.vocab.get(BOS, -1)
        self.eos = self.vocab.get(EOS, -1)
        self.unk = next((self.vocab[w] for w in UNK_SYMBOLS if w in self.vocab), -1)
        self._index: list[dict[int, int] | None] = [None] * self.order
        self._score_cache: dict[tuple[tuple[int, ...], int], tuple[float, tuple[int, ...]]] = {}

    # ------------------------------------------------------------------ public API
    def __repr__(self) -> str:
        return f"NgramLM(order={self.order}, vocab={len(self.words)}, ngrams={self.num_ngrams()})"

    def num_ngrams(self) -> list[int]:
        """Number of n-grams with a probability per order (blank context rows excluded)."""
        return [int(np.count_nonzero(~np.isnan(lp))) for lp in self.logprobs]

    def clear_cache(self) -> None:
        """Forget memoised scores (call after changing probabilities or back-off weights in place)."""
        self._score_cache.clear()

    def word_id(self, word: str) -> int:
        """Id of ``word``; outside the vocabulary -> ``<unk>`` if the model has it, else LMError."""
        i = self.vocab.get(word)
        if i is not None:
            return i
        if self.unk >= 0:
            return self.unk
        raise LMError(f"word {word!r} is not in the LM vocabulary and the LM has no {UNK}")

    def logprob(self, word: str, history: Sequence[str] = ()) -> float:
        """log10 p(word | history), exact back-off; history oldest first."""
        return self.logprob_ids(self.word_id(word), tuple(self.word_id(h) for h in history))

    def score_sentence(self, words: Iterable[str]) -> float:
        """log10 probability of ``<s> words </s>`` (``</s>`` scored, ``<s>`` not)."""
        state = self.start_state()
        total = 0.0
        for w in list(words) + [EOS]:
            lp, state = self.score_ids(state, self.word_id(w))
            total += lp
        return total

    def start_state(self) -> tuple[int, ...]:
        """The reduced state after ``<s>``."""
        return self.context_state((self.bos,)) if self.bos >= 0 else ()

    def context_state(self, history: Sequence[int]) -> tuple[int, ...]:
        """Longest suffix (at most order-1 words) of ``history`` that is an n-gram of the model."""
        hist = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        for start in range(len(hist)):
            if self.find_row(hist[start:]) >= 0:
                return hist[start:]
        return ()

    def score_ids(self, state: tuple[int, ...], word: int) -> tuple[float, tuple[int, ...]]:
        """(log10 p(word | state), reduced state after word); memoised."""
        key = (state, word)
        hit = self._score_cache.get(key)
        if hit is None:
            lp = self.logprob_ids(word, state)
            hit = (lp, self.context_state(state + (word,)))
            if len(self._score_cache) > 2_000_000:
                self._score_cache.clear()
            self._score_cache[key] = hit
        return hit

    def logprob_ids(self, word: int, history: Sequence[int] = ()) -> float:
        """log10 p(word | history) with ids; ids < 0 in history act as unknown words."""
        if not 0 <= word < len(self.words):
            raise LMError(f"word id {word} out of range")
        hist = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        total = 0.0
        # from the longest context down: back off until (context, word) is found
        for start in range(len(hist) + 1):
            ctx = hist[start:]
            ctx_row = self.find_row(ctx) if ctx else 0
            if ctx and ctx_row < 0:
                continue  # context absent: back-off weight 1
            row = self._child(len(ctx) + 1, ctx_row, word)
            if row >= 0:
                lp = self.logprobs[len(ctx)][row]
                if not math.isnan(lp):
                    return total + lp
            if ctx:
                total += self.backoffs[len(ctx) - 1][ctx_row]
        return total + LOG10_ZERO  # unreachable for a unigram row with a probability

    def find_row(self, ngram: Sequence[int]) -> int:
        """Row of ``ngram`` (tuple of ids) in order len(ngram), or -1 when absent."""
        row = 0
        for k, w in enumerate(ngram, 1):
            if w < 0 or w >= len(self.words):
                return -1
            row = self._child(k, row, w)
            if row < 0:
                return -1
        return row if ngram else -1

    def logprob_batch(self, words: np.ndarray, histories: np.ndarray) -> np.ndarray:
        """Vectorised log10 p(words[i] | histories[i]).

        ``histories``: int array [n, h], oldest word first, padded on the left with -1
        (any h; only the last order-1 columns are used). Returns float64 [n].
        """
        words = np.asarray(words, dtype=np.int64)
        n = len(words)
        hist = np.asarray(histories, dtype=np.int64)
        if hist.ndim != 2:
            hist = hist.reshape(n, -1) if hist.size else np.zeros((n, 0), np.int64)
        if hist.shape[0] != n:
            raise LMError(f"logprob_batch: {n} words but {hist.shape[0]} histories")
        H = self.order - 1
        if hist.shape[1] > H:
            hist = hist[:, hist.shape[1] - H:]
        elif hist.shape[1] < H:
            hist = np.concatenate([np.full((n, H - hist.shape[1]), -1, np.int64), hist], axis=1)
        result = np.zeros(n)
        done = np.zeros(n, dtype=bool)
        for clen in range(H, -1, -1):  # context length, longest first
            ctx = hist[:, H - clen:]
            ctx_row = self._rows_batch(ctx) if clen else np.zeros(n, np.int64)
            ok = ~done & (ctx_row >= 0)
            row = np.full(n, -1, np.int64)
            if ok.any():
                row[ok] = self._child_batch(clen + 1, ctx_row[ok], words[ok])
            found = ok & (row >= 0)
            if found.any():
                lp = self.logprobs[clen][row[found]]
                real = ~np.isnan(lp)
                idx = np.flatnonzero(found)[real]
                result[idx] += lp[real]
                done[idx] = True
            if clen:
                bo = ok & ~done
                result[bo] += self.backoffs[clen - 1][ctx_row[bo]]
        return result

    def find_rows_batch(self, ngrams: np.ndarray) -> np.ndarray:
        """Rows of many n-grams of one order (int array [n, k]; ids < 0 never match), -1 if absent."""
        ngrams = np.asarray(ngrams, dtype=np.int64)
        if ngrams.ndim != 2 or ngrams.shape[1] == 0:
            raise LMError("find_rows_batch needs an [n, k >= 1] array of word ids")
        return self._rows_batch(ngrams)

    def score_batch(self, states: Sequence[tuple[int, ...]], words: np.ndarray) -> tuple[np.ndarray, list[tuple[int, ...]]]:
        """Vectorised :meth:`score_ids`: (log10 probs [n], reduced states after each word)."""
        words = np.asarray(words, dtype=np.int64)
        n = len(words)
        H = self.order - 1
        if H == 0:
            return self.logprobs[0][words].copy(), [()] * n
        hist = np.full((n, H), -1, np.int64)
        for i, st in enumerate(states):
            if st:
                hist[i, H - len(st):] = st[-H:]
        lp = self.logprob_batch(words, hist)
        ext = np.concatenate([hist, words[:, None]], axis=1)[:, 1:]
        length = np.zeros(n, np.int64)
        for L in range(H, 0, -1):  # longest suffix of (state, word) that is an n-gram
            todo = np.flatnonzero(length == 0)
            if len(todo) == 0:
                break
            rows = self._rows_batch(ext[todo, H - L:])
            length[todo[rows >= 0]] = L
        return lp, [tuple(e[H - L:]) if L else () for e, L in zip(ext.tolist(), length.tolist())]

    # ------------------------------------------------------------------ helpers
    def _child(self, k: int, prefix_row: int, w: int) -> int:
        """Row in order k of (prefix_row's n-gram, w), or -1."""
        if k == 1:
            return w
        index = self._index[k - 1]
        if index is None:
            index = self._build_index(k)
        return index.get(prefix_row * len(self.words) + w, -1)

    def _build_index(self, k: int) -> dict[int, int]:
        index = dict(zip(self.keys[k - 1].tolist(), range(len(self.keys[k - 1]))))
        self._index[k - 1] = index
        return index

    def _child_batch(self, k: int, prefix_rows: np.ndarray, w: np.ndarray) -> np.ndarray:
        if k == 1:
            return np.where((w >= 0) & (w < len(self.words)), w, -1)
        keys = self.keys[k - 1]
        bad = (prefix_rows < 0) | (w < 0)
        q = prefix_rows * len(self.words) + w
        pos = np.searchsorted(keys, q)
        pos_c = np.minimum(pos, max(len(keys) - 1, 0))
        hit = (len(keys) > 0) & ~bad & (keys[pos_c] == q) if len(keys) else np.zeros(len(q), bool)
        return np.where(hit, pos_c, -1)

    def _rows_batch(self, ngrams: np.ndarray) -> np.ndarray:
        row = self._child_batch(1, np.zeros(len(ngrams), np.int64), ngrams[:, 0])
        for j in range(1, ngrams.shape[1]):
            row = self._child_batch(j + 1, row, ngrams[:, j])
        return row

    def ngram_words(self, k: int) -> np.ndarray:
        """Word-id matrix [rows, k] of order k (vectorised walk up the prefix pointers)."""
        n = len(self.keys[k - 1])
        out = np.empty((n, k), dtype=np.int64)
        row = np.arange(n)
        for j in range(k, 0, -1):
            out[:, j - 1] = self.word[j - 1][row]
            row = self.prefix[j - 1][row]
        return out

    def context_sum_errors(self) -> list[float]:
        """Max |1 - sum_w p(w|h)| per order over all contexts h (for tests and sanity checks).

        For each context of order k (an n-gram of order k-1 that has children, and the
        empty context for k = 1) sums the explicit probabilities plus the backed-off mass
        of the words without an explicit n-gram: computed vectorised per context as
        sum_seen p + bow(h) * (1 - sum_seen p_lower).
        """
        errs = []
        V = len(self.words)
        not_bos = np.ones(V, dtype=bool)
        if self.bos >= 0:
            not_bos[self.bos] = False
        uni = 10.0 ** self.logprobs[0]
        errs.append(abs(1.0 - uni[not_bos].sum()))
        for k in range(2, self.order + 1):
            lp = self.logprobs[k - 1]
            pref = self.prefix[k - 1]
            real = ~np.isnan(lp)
            # lower-order prob of each n-gram's word given the prefix's suffix
            lower = self._lower_logprob(k)
            n_ctx = len(self.keys[k - 2])
            seen = np.bincount(pref[real], weights=10.0 ** lp[real], minlength=n_ctx)
            seen_lower = np.bincount(pref[real], weights=10.0 ** lower[real], minlength=n_ctx)
            has = np.bincount(pref[real], minlength=n_ctx) > 0
            total = seen + 10.0 ** self.backoffs[k - 2] * (1.0 - seen_lower)
            errs.append(float(np.max(np.abs(1.0 - total[has]))) if has.any() else 0.0)
        return errs

    def _lower_logprob(self, k: int) -> np.ndarray:
        """log10 p(w | h') for each order-k row (h, w), h' = h without its first word."""
        M = self.ngram_words(k)
        return self.logprob_batch(M[:, -1], M[:, 1:-1]) if k > 2 else self.logprobs[0][M[:, -1]]
