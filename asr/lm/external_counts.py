"""N-gram counting for texts larger than memory: sorted runs on disk, merged.

``count_text(text, order, ...)`` counts a text that fits in one chunk of ``chunk_words``
words in memory (``asr.lm.counting.count_ngrams``); a longer one it reads in chunks of about
``chunk_words`` words, counts each chunk in memory with :func:`asr.lm.counting.count_ngrams`, and writes
every order's table as a *sorted run* (n-grams as rows of word ids, lexicographic order,
with counts) to a temporary directory. Then, order by order, the runs are merged block by
block (a k-way merge: from every run take the rows up to the smallest "last row" of the
runs' current blocks, sort them together and add the counts of equal n-grams), so memory
holds one block per run, not the corpus. What is kept in memory is the merged tables, i.e.
what the model will hold anyway (32 bytes per n-gram).

Count cutoffs (``min_counts``: orders 2, 3, ...; last value repeats; non-decreasing, so
every kept n-gram's prefix and suffix are kept) are applied *while merging*, before
estimation, which is what lets a large text's model fit (SRILM ``-gtNmin`` style). What the
Kneser-Ney estimate needs from the cut n-grams is taken before they are dropped:

- continuation counts of order k-1 (distinct left contexts) count every merged k-gram,
  kept or cut; they are returned in ``NgramCounts.continuation``;
- counts-of-counts n1..n4 for the discounts: of the raw counts of all merged n-grams for the
  highest order (exact), and of the continuation counts of the kept n-grams for lower orders
  (exact unless that order itself is cut); in ``NgramCounts.count_of_counts``.

Without cutoffs the result equals ``count_ngrams`` on the whole text (tested).
Memory: one chunk's counting (about 40 bytes per word plus 32 per distinct n-gram of the
chunk), one block per run while merging, and the kept tables (32 bytes per n-gram).
Run files are removed at the end (also on errors).
"""

from __future__ import annotations

import gzip
import itertools
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from asr.errors import LMError
from asr.lm.counting import Corpus, NgramCounts, count_ngrams
from asr.lm.ngram_lm import BOS, EOS, UNK

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_WORDS = 20_000_000
MERGE_BLOCK = 1 << 20  # rows read from each run per merge step


def iter_corpus_chunks(text: str | os.PathLike, vocab: list[str] | None, unk: str, chunk_words: int,
                       stats: dict) -> Iterator[Corpus]:
    """The text as Corpus objects of about ``chunk_words`` words each (whole sentences),
    sharing one growing vocabulary list (open vocabulary) or the closed ``vocab``.
    ``stats`` accumulates sentences, words, oov, skipped."""
    text = Path(text)
    closed = vocab is not None
    words = list(vocab) if closed else [EOS, BOS, unk]
    index = {w: i for i, w in enumerate(words)}
    missing = [w for w in (EOS, BOS, unk) if w not in index]
    if missing:
        raise LMError(f"vocabulary lacks {' '.join(missing)}")
    unk_id, bos, eos = index[unk], index[BOS], index[EOS]
    try:
        raw_file = open(text, "rb")
    except OSError as e:
        raise LMError(f"{text}: cannot read text: {e}") from e
    gz = raw_file.read(2) == b"\x1f\x8b"
    raw_file.seek(0)
    f = gzip.GzipFile(fileobj=raw_file) if gz else raw_file  # progress: bytes of the file on disk
    ids: list[int] = []
    lengths: list[int] = []
    size = os.path.getsize(text)
    done = 0
    with raw_file, f, tqdm(total=size, unit="B", unit_scale=True, desc=f"counting {text.name}", leave=False,
                           disable=size < 50_000_000) as bar:
        for lineno, raw in enumerate(f, 1):
            if lineno % 100_000 == 0:
                bar.update(raw_file.tell() - done)
                done = raw_file.tell()
            try:
                toks = raw.decode("utf-8").split()
            except UnicodeDecodeError as e:
                raise LMError(f"{text}:{lineno}: not UTF-8 ({e})") from None
            if not toks:
                stats["skipped_lines"] += 1
                continue
            if BOS in toks or EOS in toks:
                n0 = len(toks)
                toks = [t for t in toks if t != BOS and t != EOS]
                stats["dropped_markers"] = stats.get("dropped_markers", 0) + n0 - len(toks)
            if closed:
                line_ids = [index.get(t, -1) for t in toks]
                if -1 in line_ids:
                    stats["oov"] += line_ids.count(-1)
                    line_ids = [unk_id if i == -1 else i for i in line_ids]
            else:
                line_ids = []
                for t in toks:
                    i = index.get(t)
                    if i is None:
                        i = index[t] = len(words)
                        words.append(t)
                    line_ids.append(i)
            ids.extend(line_ids)
            lengths.append(len(line_ids))
            if len(ids) >= chunk_words:
                yield _corpus(words, ids, lengths, bos, eos, stats)
                ids, lengths = [], []
    if lengths:
        yield _corpus(words, ids, lengths, bos, eos, stats)
    if stats.get("dropped_markers"):
        logger.warning("%s: dropped %d literal <s>/</s> tokens (sentence markers are added per line)", text,
                       stats["dropped_markers"])


def _corpus(words, ids, lengths, bos, eos, stats) -> Corpus:
    lens = np.array(lengths, dtype=np.int64)
    starts = np.zeros(len(lens) + 1, np.int64)
    np.cumsum(lens + 2, out=starts[1:])
    tokens = np.empty(int(starts[-1]), np.int32)
    is_word = np.ones(len(tokens), dtype=bool)
    is_word[starts[:-1]] = False
    is_word[starts[1:] - 1] = False
    tokens[is_word] = np.array(ids, dtype=np.int32)
    tokens[starts[:-1]] = bos
    tokens[starts[1:] - 1] = eos
    stats["sentences"] += len(lens)
    stats["words"] += int(lens.sum())
    return Corpus(words, tokens, starts, len(lens), int(lens.sum()))


def count_text(text: str | os.PathLike, order: int, vocab: list[str] | None = None, unk: str = UNK,
               chunk_words: int = DEFAULT_CHUNK_WORDS, tmp_dir: str | os.PathLike | None = None,
               min_counts: Sequence[int] = ()) -> tuple[NgramCounts, dict]:
    """Count ``text``: in memory when it holds at most ``chunk_words`` words, else through
    sorted runs on disk with ``min_counts`` applied while merging. ``stats["chunks"]`` tells
    which (1: in memory, cutoffs not applied here)."""
    if order < 1:
        raise LMError(f"order must be >= 1, got {order}")
    stats = {"sentences": 0, "words": 0, "oov": 0, "skipped_lines": 0, "chunks": 0}
    chunks = iter_corpus_chunks(text, vocab, unk, chunk_words, stats)
    first = next(chunks, None)
    if first is None:
        raise LMError(f"{text}: no sentences (empty text)")
    second = next(chunks, None)
    if second is None:
        stats["chunks"] = 1
        return count_ngrams(first, order), stats
    return count_ngrams_external(itertools.chain([first, second], chunks), order, stats, tmp_dir, min_counts), stats


def count_ngrams_external(chunks: Iterable[Corpus], order: int, stats: dict, tmp_dir: str | os.PathLike | None = None,
                          min_counts: Sequence[int] = ()) -> NgramCounts:
    """Count the corpus chunks through sorted runs on disk (see the module doc); adds the
    number of chunks and the n-grams per order before and after the cutoffs to ``stats``."""
    cut = [1] + [min_counts[min(k - 2, len(min_counts) - 1)] if min_counts else 1 for k in range(2, order + 1)]
    if any(b < a for a, b in zip(cut[1:], cut[2:])):
        raise LMError(f"count cutoffs must not decrease with the order when counting in chunks (got {list(min_counts)})")
    work = Path(tempfile.mkdtemp(prefix="asr-lm-runs.", dir=tmp_dir))
    try:
        unigram = np.zeros(0, np.int64)
        runs: list[list[Path]] = [[] for _ in range(order + 1)]
        words: list[str] = []
        for c, corpus in enumerate(chunks):
            counts = count_ngrams(corpus, order)
            words = corpus.words
            V = len(words)
            if len(unigram) < V:
                unigram = np.concatenate([unigram, np.zeros(V - len(unigram), np.int64)])
            unigram[: len(counts.count[0])] += counts.count[0]
            tuples = counts.word[0].astype(np.int32)[:, None]
            for k in range(2, order + 1):
                tuples = np.concatenate([tuples[counts.prefix[k - 1]], counts.word[k - 1].astype(np.int32)[:, None]],
                                        axis=1)
                path = work / f"run{c}.order{k}"
                np.save(f"{path}.keys.npy", _pack(tuples))
                np.save(f"{path}.counts.npy", counts.count[k - 1])
                runs[k].append(path)
            stats["chunks"] += 1
            logger.info("chunk %d: %d words counted, vocabulary %d", c + 1, corpus.num_words, V)
            del counts, tuples, corpus
        V = len(words)
        out = NgramCounts(list(words), order)
        out.prefix.append(np.zeros(V, np.int64))
        out.word.append(np.arange(V, dtype=np.int64))
        out.count.append(unigram[:V])
        out.suffix.append(np.zeros(V, np.int64))
        out.continuation = [None] * order
        out.count_of_counts = [None] * order
        kept_keys = [None, _pack(np.arange(V, dtype=np.int32)[:, None])]
        stats["ngrams_merged"] = [V]
        for k in range(2, order + 1):
            keys, cnt, cont, coc, n_all = _merge_order(runs[k], k, cut[k - 1], kept_keys[k - 1], k == order)
            stats["ngrams_merged"].append(n_all)
            out.continuation[k - 2] = cont
            if k == order:
                out.count_of_counts[k - 1] = coc
            kept_keys.append(keys)
            tup = _unpack(keys, k)
            pre = np.searchsorted(kept_keys[k - 1], _pack(tup[:, :-1]))
            suf = np.searchsorted(kept_keys[k - 1], _pack(tup[:, 1:]))
            out.prefix.append(pre.astype(np.int64))
            out.word.append(tup[:, -1].astype(np.int64))
            out.count.append(cnt)
            out.suffix.append(suf.astype(np.int64))
            logger.info("order %d: %d n-grams merged, %d kept (count >= %d)", k, n_all, len(keys), cut[k - 1])
        stats["ngrams_kept"] = out.num_ngrams()
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _pack(tuples: np.ndarray) -> np.ndarray:
    """Rows of word ids → fixed-width byte keys whose byte order is the rows' lexicographic
    order (big-endian unsigned 32-bit ids)."""
    t = np.ascontiguousarray(tuples, dtype=">u4")
    return t.view(f"S{4 * t.shape[1]}").ravel()


def _unpack(keys: np.ndarray, k: int) -> np.ndarray:
    return np.ascontiguousarray(keys).view(">u4").reshape(-1, k).astype(np.int32)


def _merge_order(paths: list[Path], k: int, cutoff: int, lower_keys: np.ndarray, highest: bool):
    """k-way merge of the sorted runs of order k; returns the kept keys and counts, the
    continuation counts of the kept (k-1)-grams (from every merged k-gram), the raw
    counts-of-counts n1..n4 of every merged k-gram, and the number merged."""
    data = [(np.load(f"{p}.keys.npy", mmap_mode="r"), np.load(f"{p}.counts.npy", mmap_mode="r")) for p in paths]
    pos = [0] * len(data)
    kept_keys, kept_counts = [], []
    cont = np.zeros(len(lower_keys), np.int64)
    coc = np.zeros(4, np.int64)
    n_all = 0
    while True:
        active = [i for i, (keys, _) in enumerate(data) if pos[i] < len(keys)]
        if not active:
            break
        blocks = {i: (np.asarray(data[i][0][pos[i]: pos[i] + MERGE_BLOCK]),
                      np.asarray(data[i][1][pos[i]: pos[i] + MERGE_BLOCK])) for i in active}
        # rows up to the smallest last row of the blocks that do not end their run
        limits = [blocks[i][0][-1] for i in active if pos[i] + MERGE_BLOCK < len(data[i][0])]
        limit = min(limits) if limits else None
        parts_k, parts_c = [], []
        for i in active:
            bk, bc = blocks[i]
            n = len(bk) if limit is None else int(np.searchsorted(bk, limit, side="right"))
            parts_k.append(bk[:n])
            parts_c.append(bc[:n])
            pos[i] += n
        keys = np.concatenate(parts_k)
        counts = np.concatenate(parts_c)
        uniq, inv = np.unique(keys, return_inverse=True)
        summed = np.bincount(inv.ravel(), weights=counts, minlength=len(uniq)).astype(np.int64)
        n_all += len(uniq)
        if highest:
            coc += np.bincount(np.minimum(summed, 5), minlength=6)[1:5]
        # every merged k-gram is one distinct left context of its suffix
        suf = _pack(_unpack(uniq, k)[:, 1:])
        idx = np.searchsorted(lower_keys, suf)
        ok = idx < len(lower_keys)
        ok[ok] = lower_keys[idx[ok]] == suf[ok]
        cont += np.bincount(idx[ok], minlength=len(lower_keys))
        keep = summed >= cutoff
        kept_keys.append(uniq[keep])
        kept_counts.append(summed[keep])
    del data
    keys = np.concatenate(kept_keys) if kept_keys else np.zeros(0, f"S{4 * k}")
    counts = np.concatenate(kept_counts) if kept_counts else np.zeros(0, np.int64)
    return keys, counts, cont, (tuple(int(x) for x in coc) if highest else None), n_all
